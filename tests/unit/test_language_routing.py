"""From a text and a language (or ``auto``) to the model that speaks it."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from f5serve.errors import InvalidInput, NotFound, UnsupportedLanguage
from f5serve.registry import BUILTIN_MODELS, Catalog, LanguageRouter, LocalPath, ModelSpec
from f5serve.registry.language import detect_script, normalize_language

SENTENCES = {
    "fi": "Hyvää huomenta! Tänään on kaunis päivä, ja aion mennä kävelylle puistoon.",
    "fr": "Bonjour à tous, aujourd'hui nous allons parler de l'histoire de notre ville.",
    "de": "Guten Morgen, heute möchte ich Ihnen etwas über unsere neue Bibliothek erzählen.",
    "hi": "नमस्ते, आज मौसम बहुत अच्छा है और हम पार्क में टहलने जा रहे हैं।",
    "it": "Buongiorno a tutti, oggi vi racconto la storia di questa piccola città.",
    "ja": "こんにちは、今日はとても良い天気ですね。公園に散歩に行きましょう。",
    "lv": "Labrīt! Šodien ir ļoti jauka diena, un mēs iesim pastaigāties pa parku.",
    "ru": "Здравствуйте, сегодня прекрасная погода, и мы пойдём гулять в парк.",
    "es": "Buenos días a todos, hoy vamos a hablar sobre la historia de esta ciudad.",
    "zh": "今天天气很好，我们一起去公园散步吧。",
    "en": "The weather is lovely today, so we are going for a walk in the park.",
    "vi": "Xin chào, hôm nay trời đẹp quá, chúng ta cùng đi dạo công viên nhé.",
}
EXPECTED_MODEL = {code: f"f5tts-{code}" for code in SENTENCES} | {
    "zh": "f5tts-v1-base",
    "en": "f5tts-v1-base",
}
SCRIPT_LANGUAGES = {"hi", "ja", "ru", "zh"}


@pytest.fixture(scope="module")
def router() -> LanguageRouter:
    return LanguageRouter(Catalog.builtin())


@pytest.mark.parametrize("code", sorted(SENTENCES))
def test_sentence_in_each_served_language_routes_to_its_model(
    router: LanguageRouter, code: str
) -> None:
    found = router.detect(SENTENCES[code])
    assert found.language == code
    assert found.method == ("script" if code in SCRIPT_LANGUAGES else "lingua")
    assert router.route(SENTENCES[code]) == EXPECTED_MODEL[code]


LATIN_SCRIPT = [
    ("Cảm ơn bạn rất nhiều.", "vi"),
    ("Tôi yêu Việt Nam.", "vi"),
    ("Anh ấy là bác sĩ.", "vi"),
    ("Không có gì.", "vi"),
    ("Chào buổi sáng", "vi"),
    (unicodedata.normalize("NFD", "Cảm ơn bạn rất nhiều."), "vi"),  # typed with combining marks
    ("Merci beaucoup, à demain !", "fr"),
    ("Thank you very much, see you tomorrow.", "en"),
    ("Vielen Dank, bis morgen!", "de"),
    ("Muchas gracias, hasta mañana.", "es"),
]


@pytest.mark.parametrize(("text", "language"), LATIN_SCRIPT)
def test_vietnamese_is_told_from_other_latin_script_languages(
    router: LanguageRouter, text: str, language: str
) -> None:
    assert router.detect(text).language == language


@pytest.mark.parametrize("text", ["Ok", "Hi", "OK.", "Yes", "No", "42!", "…", "Hola"])
def test_short_or_letterless_text_goes_to_the_default_model(
    router: LanguageRouter, text: str
) -> None:
    assert router.detect(text).language is None
    assert router.route(text) == "f5tts-v1-base"


@pytest.mark.parametrize(
    "text",
    [
        "我们明天用 Python 写一个 demo 吧。",
        "This sentence mentions 北京 once.",
        "Hello 你好",
    ],
)
def test_mixed_chinese_and_english_goes_to_the_multilingual_model(
    router: LanguageRouter, text: str
) -> None:
    found = router.detect(text)
    assert found.language == "zh" and found.mixed_zh_en
    assert router.route(text) == "f5tts-v1-base"


def test_mixed_text_prefers_a_model_that_speaks_both_languages() -> None:
    zh_only = ModelSpec(
        "zh-only", ("zh",), LocalPath(Path("c.pt")), LocalPath(Path("v.txt")), "F5TTS_Base"
    )
    en_default = ModelSpec(
        "en-only", ("en",), LocalPath(Path("c.pt")), LocalPath(Path("v.txt")), "F5TTS_Base"
    )
    catalog = Catalog((*BUILTIN_MODELS, zh_only, en_default), default_name="en-only")
    router = LanguageRouter(catalog)
    assert router.route("今天天气很好。") == "zh-only"  # user models before built-ins
    assert router.route("我们明天用 Python 写一个 demo 吧。") == "f5tts-v1-base"


def test_explicit_language_picks_its_model_without_detection(router: LanguageRouter) -> None:
    # The text is English; the caller says it is German.
    assert router.route(SENTENCES["en"], language="de") == "f5tts-de"
    assert router.route("", language="EN-us") == "f5tts-v1-base"
    assert router.route("", language="es_ES") == "f5tts-es"


def test_unknown_language_is_an_error_listing_the_served_languages(
    router: LanguageRouter,
) -> None:
    with pytest.raises(UnsupportedLanguage) as caught:
        router.route("Habari ya asubuhi", language="sw")
    assert caught.value.message == (
        "no model speaks 'sw'; languages served: de, en, es, fi, fr, hi, it, ja, lv, ru, vi, zh"
    )
    assert caught.value.http_status == 422


@pytest.mark.parametrize("bad", ["english", "e", "12", "", "zh-", "x-klingon"])
def test_malformed_language_code_is_invalid_input(router: LanguageRouter, bad: str) -> None:
    with pytest.raises(InvalidInput, match="ISO 639-1 code"):
        router.route("Hello there.", language=bad)


def test_explicit_model_wins_over_detection(router: LanguageRouter) -> None:
    assert router.route(SENTENCES["fr"], model="f5tts-base") == "f5tts-base"
    assert router.route(SENTENCES["fr"], language="auto", model="f5tts-de") == "f5tts-de"
    assert router.route("Bonjour", language="fr", model="f5tts-fr") == "f5tts-fr"


def test_explicit_model_that_does_not_speak_the_explicit_language_is_refused(
    router: LanguageRouter,
) -> None:
    with pytest.raises(UnsupportedLanguage, match="model 'f5tts-fr' does not speak 'de'"):
        router.route("Guten Tag", language="de", model="f5tts-fr")
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        router.route("Hello", model="nope")


def test_detected_language_no_model_serves_falls_back_to_the_default() -> None:
    only_en = Catalog((BUILTIN_MODELS[0],))
    router = LanguageRouter(only_en)
    assert router.route(SENTENCES["ja"]) == "f5tts-v1-base"
    assert router.route(SENTENCES["ru"]) == "f5tts-v1-base"
    assert router.route(SENTENCES["de"]) == "f5tts-v1-base"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("カタカナだけ", "ja"),
        ("東京タワーに行きます", "ja"),  # kanji + kana is Japanese, not Chinese
        ("Привет, мир", "ru"),
        ("मेरा नाम राम है", "hi"),
        ("Plain English words", None),
    ],
)
def test_script_fast_path(text: str, language: str | None) -> None:
    found = detect_script(text)
    assert (found.language if found else None) == language


def test_language_codes_are_normalised() -> None:
    assert normalize_language(" AUTO ") == "auto"
    assert normalize_language("zh-Hans") == "zh"
    assert normalize_language("en_GB") == "en"

"""Text normalisation: one table per language, mixed scripts, and what it leaves alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from f5serve.engine.normalize import normalize_text

CASES: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("I have 3 apples.", "I have three apples."),
        ("It is -2.5 degrees.", "It is minus two point five degrees."),
        ("He came 21st.", "He came twenty-first."),
        ("Pages 5-10.", "Pages five to ten."),
        ("In 1999 we met.", "In nineteen ninety-nine we met."),
        ("On 2024-03-05.", "On March fifth, twenty twenty-four."),
        ("At 3:05 or 10:00.", "At three oh five or ten o'clock."),
        ("Meet at 5pm.", "Meet at five pm."),
        ("It costs $12.50.", "It costs twelve dollars, fifty cents."),
        ("It costs $12 now.", "It costs twelve dollars now."),
        ("About 45% of 1,200.", "About forty-five percent of one thousand, two hundred."),
        ("We ran 10 km.", "We ran ten kilometers."),
        ("Dr. Smith, e.g. here.", "Doctor Smith, for example here."),
        ("Pi is 3.14159.", "Pi is three point one four one five nine."),
    ],
    "de": [
        ("Er lief 3,5 km.", "Er lief drei Komma fünf Kilometer."),
        ("Das kostet 12 €.", "Das kostet zwölf Euro."),
        ("20% mehr", "zwanzig Prozent mehr"),
        ("Im Jahr 1999.", "Im Jahr neunzehnhundertneunundneunzig."),
        ("Seiten 5-10", "Seiten fünf bis zehn"),
        ("z.B. 1.000 Leute", "zum Beispiel eintausend Leute"),
    ],
    "fr": [
        ("Le 2e jour.", "Le deuxième jour."),
        ("Il coûte 12 €.", "Il coûte douze euros."),
        ("Environ 20%.", "Environ vingt pour cent."),
        ("En 1999.", "En mille neuf cent quatre-vingt-dix-neuf."),
        ("De 5-10 ans.", "De cinq à dix ans."),
        ("M. Dupont a 3,5 kg.", "Monsieur Dupont a trois virgule cinq kilos."),
    ],
    "es": [
        ("Cuesta 12 €.", "Cuesta doce euros."),
        ("Un 25%.", "Un veinticinco por ciento."),
        ("En 1990.", "En mil novecientos noventa."),
        ("Sr. López tiene 2 gatos.", "señor López tiene dos gatos."),
    ],
    "it": [
        ("Costa 3 €.", "Costa tre euro."),
        ("Il 50%.", "Il cinquanta per cento."),
        ("Ho 2,5 kg.", "Ho due virgola cinque chili."),
    ],
    "fi": [
        ("Minulla on 3 kissaa.", "Minulla on kolme kissaa."),
        ("Se maksaa 12 €.", "Se maksaa kaksitoista euroa."),
    ],
    "ru": [
        ("У меня 5 яблок.", "У меня пять яблок."),
        ("Это 50%.", "Это пятьдесят процентов."),
    ],
    "ja": [
        ("りんごが3個あります。", "りんごが三個あります。"),
        ("50%です。", "五十パーセントです。"),
    ],
    # f5serve reads Vietnamese numbers itself (num2words says "mười bảy" for -3, "hai phẩy
    # năm mươi" for 2.5 and "hai nghìn lẻ hai mươi bốn" for 2024); more in test_normalize_vi.py
    "vi": [
        ("Tôi có 3 quả táo.", "Tôi có ba quả táo."),
        ("Nhiệt độ -3 độ.", "Nhiệt độ âm ba độ."),
        ("Nặng 2,5 kg.", "Nặng hai phẩy năm ki lô gam."),
        ("Số pi là 3,14.", "Số pi là ba phẩy mười bốn."),
        ("Lãi 2,05%.", "Lãi hai phẩy không năm phần trăm."),
        ("Năm 1999.", "Năm một nghìn chín trăm chín mươi chín."),
        ("Từ 5-10 người.", "Từ năm đến mười người."),
        ("Lúc 10:30 và 7:00.", "Lúc mười giờ ba mươi phút và bảy giờ."),
        ("Hạn 2024-03-05.", "Hạn ngày năm tháng ba năm hai nghìn không trăm hai mươi tư."),
        ("Giá 100.000đ.", "Giá một trăm nghìn đồng."),
        ("Giá 100.000 ₫ hay $5.", "Giá một trăm nghìn đồng hay năm đô la."),
        (
            "Khoảng 1.200 người, 45% nữ.",
            "Khoảng một nghìn hai trăm người, bốn mươi lăm phần trăm nữ.",
        ),
        ("Chạy 10 km, thứ 3.", "Chạy mười ki lô mét, thứ ba."),
        ("TP. Huế, v.v.", "thành phố Huế, vân vân"),
    ],
    "zh": [
        ("我有3个苹果。", "我有三个苹果。"),
        ("增长50%。", "增长百分之五十。"),
        ("2024年出生。", "二零二四年出生。"),
        ("温度-3.5°C。", "温度负三点五摄氏度。"),
        ("10:30开会。", "十点三十分开会。"),
        ("花了$5和3€。", "花了五美元和三欧元。"),
        ("2024-03-05。", "二零二四年三月五日。"),
        ("有1,000人", "有一千人"),
        ("我有 3 个", "我有 三个"),
    ],
}


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [(lang, text, expected) for lang, rows in CASES.items() for text, expected in rows],
    ids=lambda v: v if len(v) < 30 else v[:30],
)
def test_each_language_reads_its_numbers_and_symbols(
    language: str, text: str, expected: str
) -> None:
    assert normalize_text(text, language) == expected


def test_numbers_follow_the_script_of_their_span() -> None:
    # English numbers inside Chinese, Chinese numbers inside English
    assert normalize_text("我说 I have 3 cats 好的", "zh") == "我说 I have three cats 好的"
    assert normalize_text("He wrote 第3章 today", "en") == "He wrote 第三章 today"
    assert normalize_text("Он сказал 5 раз", "en") == "Он сказал пять раз"


def test_without_a_language_latin_text_is_read_in_english() -> None:
    assert normalize_text("I have 3 apples.") == "I have three apples."
    assert normalize_text("I have 3 apples.", "auto") == "I have three apples."


@pytest.mark.parametrize("language", ["en", "de", "vi"])
def test_an_amount_too_large_for_num2words_currency_is_still_read(language: str) -> None:
    spoken = normalize_text("$" + "9" * 40, language)  # was decimal.InvalidOperation (a 500)
    assert spoken and not any(c.isdigit() for c in spoken)


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "Son " + "9" * 40 + " granos."),
        ("ru", "Это " + "9" * 40 + " раз."),
        ("zh", "有1.000.000,25元"),
    ],
)
def test_a_number_the_libraries_cannot_read_stays_as_written(language: str, text: str) -> None:
    assert normalize_text(text, language) == text  # was OverflowError, KeyError, ValueError


def test_what_it_leaves_alone() -> None:
    # digits glued to Latin letters, explicit pinyin, and languages without rules
    assert normalize_text("mp3 and F5 work", "en") == "mp3 and F5 work"
    assert normalize_text("去{chong2 qing4}了", "zh") == "去{chong2 qing4}了"
    assert normalize_text("मेरे पास 3 सेब हैं", "hi") == "मेरे पास 3 सेब हैं"


def test_the_golden_parity_texts_have_nothing_to_normalise(golden_dir: Path) -> None:
    """The end-to-end parity cases hold no number or symbol: with normalisation on or off
    they are the same request."""
    manifest = json.loads((golden_dir / "manifest.json").read_text())
    for case in manifest["cases"]["e2e"]["cases"]:
        assert normalize_text(case["gen_text"], "en") == case["gen_text"]

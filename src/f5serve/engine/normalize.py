"""Text normalisation: numbers, dates, times, money, percentages, units and abbreviations
written out as words, before the text is chunked.

F5-TTS reads characters: "1999" or "$5" are guessed at, often wrongly. Each number is read in
the language of the words around it (its span's script): digits among Chinese characters are
read in Chinese (``cn2an``), digits among Latin or Cyrillic words in the request's language
(``num2words``; English when the request's language has no Latin script, such as ``zh``;
Vietnamese whole numbers by :mod:`f5serve.engine.vietnamese`, as num2words misreads them).
A language without rules here keeps its text unchanged, and so do digits written right after
a Latin letter ("mp3", "F5", pinyin such as ``{zhong4}``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import cn2an
from num2words import num2words

from f5serve.engine import vietnamese
from f5serve.engine.textmap import MappedText


@dataclass(frozen=True)
class Reader:
    """A language's own reading of whole numbers (0 or more), in place of num2words'."""

    cardinal: Callable[[int], str]
    ordinal: Callable[[int], str]


@dataclass(frozen=True)
class Rules:
    """How one language reads what the normaliser recognises."""

    code: str  # num2words language code
    decimal_comma: bool = True  # "3,5" is three point five; "1.000" is a thousand
    to: str = "to"  # the word of a range: "5-10" -> "five to ten"
    percent: str = " percent"  # with its separator
    ordinal: str = r"(?!)"  # suffixes after digits that make an ordinal ("1st", "2e")
    ordinal_before: str = r"(?!)"  # words before digits that make an ordinal ("thứ 4")
    years: bool = True  # a lone 4-digit number from 1100 to 2099 reads as a year
    # symbol -> ISO code; where num2words has no currency reading, the currency's name
    currencies: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    abbreviations: dict[str, str] = field(default_factory=dict)
    reader: Reader | None = None  # whole numbers read by it rather than by num2words
    # With a reader, or where num2words reads signs and fractions wrong, the words for them:
    # the sign and the integer part are read separately, then the decimals as a number after
    # their leading zeros ("2,05": "hai phẩy không năm").
    minus: str | None = None
    point: str | None = None
    date: str | None = None  # an ISO date as words around cardinals: "{day} {month} {year}"
    clock: tuple[str, str] | None = None  # words after the hours and the minutes of a time


_EURO = {"€": "EUR", "$": "USD", "£": "GBP"}
_METRIC = ("km/h", "km", "kg", "cm", "mm", "ml", "mg", "m", "g", "l", "°C", "°F")

LANGUAGES: dict[str, Rules] = {
    "en": Rules(
        "en",
        decimal_comma=False,
        ordinal=r"st|nd|rd|th",
        currencies={**_EURO, "¥": "JPY"},
        units=dict(
            zip(
                _METRIC,
                (
                    "kilometers per hour",
                    "kilometers",
                    "kilograms",
                    "centimeters",
                    "millimeters",
                    "milliliters",
                    "milligrams",
                    "meters",
                    "grams",
                    "liters",
                    "degrees Celsius",
                    "degrees Fahrenheit",
                ),
                strict=True,
            )
        ),
        abbreviations={
            "Dr.": "Doctor",
            "Mr.": "Mister",
            "Mrs.": "Missus",
            "Ms.": "Miz",
            "St.": "Saint",
            "Prof.": "Professor",
            "vs.": "versus",
            "etc.": "et cetera",
            "e.g.": "for example",
            "i.e.": "that is",
            "approx.": "approximately",
        },
    ),
    "de": Rules(
        "de",
        to="bis",
        percent=" Prozent",
        currencies=_EURO,
        units={"km/h": "Kilometer pro Stunde", "km": "Kilometer", "kg": "Kilogramm", "°C": "Grad"},
        abbreviations={"z.B.": "zum Beispiel", "usw.": "und so weiter", "Dr.": "Doktor"},
    ),
    "fr": Rules(
        "fr",
        to="à",
        percent=" pour cent",
        ordinal=r"er|re|e|ème",
        currencies=_EURO,
        units={"km/h": "kilomètres heure", "km": "kilomètres", "kg": "kilos", "°C": "degrés"},
        abbreviations={"M.": "Monsieur", "Mme": "Madame", "Dr": "Docteur", "etc.": "et cetera"},
    ),
    "es": Rules(
        "es",
        to="a",
        percent=" por ciento",
        ordinal=r"º|ª",
        currencies=_EURO,
        units={"km/h": "kilómetros por hora", "km": "kilómetros", "kg": "kilos", "°C": "grados"},
        abbreviations={"Sr.": "señor", "Sra.": "señora", "Dr.": "doctor", "etc.": "etcétera"},
    ),
    "it": Rules(
        "it",
        to="a",
        percent=" per cento",
        ordinal=r"º|ª",
        currencies=_EURO,
        units={"km": "chilometri", "kg": "chili", "°C": "gradi"},
        abbreviations={"Sig.": "signor", "Dott.": "dottor", "ecc.": "eccetera"},
    ),
    "fi": Rules("fi", to="–", percent=" prosenttia", years=False, currencies=_EURO),
    "ru": Rules("ru", to="до", percent=" процентов", years=False, currencies=_EURO),
    "ja": Rules("ja", decimal_comma=False, to="から", percent="パーセント", years=False),
    "vi": Rules(
        "vi",
        to="đến",
        percent=" phần trăm",
        ordinal_before="thứ",
        years=False,  # a year is read as a cardinal ("năm 1999": "năm một nghìn ...")
        currencies={"$": "đô la", "€": "euro", "£": "bảng Anh", "₫": "đồng", "đ": "đồng"},
        units={
            "km/h": "ki lô mét trên giờ",
            "km": "ki lô mét",
            "kg": "ki lô gam",
            "cm": "xen ti mét",
            "mm": "mi li mét",
            "m": "mét",
            "g": "gam",
            "°C": "độ C",
        },
        abbreviations={"v.v.": "vân vân", "TP.": "thành phố", "TS.": "tiến sĩ"},
        reader=Reader(vietnamese.cardinal, vietnamese.ordinal),
        minus="âm",
        point="phẩy",
        date="ngày {day} tháng {month} năm {year}",
        clock=("giờ", "phút"),
    ),
}

_NUMBER = r"(?<![A-Za-z])-?\d+(?:[.,]\d{3}(?!\d))*(?:[.,]\d+)?"
_LATIN_FALLBACK = "en"


def normalize_text(text: str, language: str | None = None) -> str:
    """``text`` with numbers, dates, times, money, percentages, units and abbreviations
    written out; ``language`` (an ISO 639-1 code, or None for English) decides how numbers
    among letters of a Latin or Cyrillic script are read."""
    return normalize_mapped(MappedText.of(text), language).text


def normalize_mapped(text: MappedText, language: str | None = None) -> MappedText:
    """:func:`normalize_text` keeping the map to the original text: each reading comes from
    what it reads ("twelve" from "12", "Doctor" from "Dr.")."""
    expanded = _abbreviate(text, language)
    return expanded.sub(_NUMBERISH, lambda m: _render(m, expanded.text, language))


def _abbreviate(text: MappedText, language: str | None) -> MappedText:
    rules = LANGUAGES.get(language or _LATIN_FALLBACK)
    if rules is None or not rules.abbreviations:
        return text
    longest_first = sorted(rules.abbreviations, key=len, reverse=True)
    alternatives = "|".join(re.escape(a) for a in longest_first)
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    return text.sub(pattern, lambda m: rules.abbreviations[m[0]])


_NUMBERISH = re.compile(
    r"(?P<cur>[$€£¥])?\s?"
    rf"(?P<num>{_NUMBER})"
    r"(?:(?P<time>:\d{2})|(?P<date>-\d{2}-\d{2})|\s?(?P<range>[-–]\s?\d+(?:[.,]\d+)?))?"
    r"(?P<suffix>\s?[%€$£¥₫]|[^\W\d_]+|\s?°[CF]|\s?km/h|\s?[^\W\d_]+(?=[\s,.;:!?]|$))?"
)


def _render(m: re.Match[str], text: str, language: str | None) -> str:
    lang = _span_language(text, m.start("num"), m.end("num"), language)
    rules = LANGUAGES.get(lang)
    if lang != "zh" and rules is None:
        return m[0]
    lead = m[0][: len(m[0]) - len(m[0].lstrip())]  # a space before the number stays
    try:
        if rules is None:
            return lead + _render_zh(m)
        return lead + _render_rules(m, rules, text[: m.start("num")])
    except (ArithmeticError, LookupError, ValueError):  # too large for num2words, cn2an refuses
        return m[0]


def _span_language(text: str, start: int, end: int, language: str | None) -> str:
    """The language a number at ``text[start:end]`` is read in: the script of the nearest
    letter (Han: Chinese, or Japanese for a Japanese request; kana: Japanese; Cyrillic:
    Russian; Latin: the request's language, or English)."""
    nearest = _nearest_letter(text[:start][::-1], text[end:])
    if nearest is None:  # nothing but digits and signs: the request's language
        return language if language in ("zh", "ja") else _latin(language)
    script = _script(nearest)
    if script == "han":
        return "ja" if language == "ja" else "zh"
    if script == "kana":
        return "ja"
    if script == "cyrillic":
        return "ru"
    return _latin(language)


def _latin(language: str | None) -> str:
    """The language of numbers among Latin letters: the request's, or English when it has
    no Latin script (``zh``, ``ja``) or is not known."""
    if language is None or language in ("auto", "zh", "ja", "ru"):
        return _LATIN_FALLBACK
    return language


def _nearest_letter(left: str, right: str) -> str | None:
    for a, b in zip(left.ljust(len(right)), right.ljust(len(left)), strict=True):
        for c in (b, a):
            if c.isalpha():
                return c
    return None


def _script(char: str) -> str:
    if "\u3040" <= char <= "\u30ff":
        return "kana"
    if "\u3100" <= char <= "\u9fff":
        return "han"
    name = unicodedata.name(char, "")
    return "cyrillic" if name.startswith("CYRILLIC") else "latin"


# --------------------------------------------------------------------------- num2words


def _render_rules(m: re.Match[str], rules: Rules, before: str) -> str:
    """The words for a number matched by ``m``, after the text ``before``."""
    value = _parse(m["num"], rules)
    if value is None:
        return m[0]
    suffix = (m["suffix"] or "").strip()
    if m["date"]:
        return _date(rules, value, *(int(part) for part in m["date"][1:].split("-")))
    if m["time"]:
        head = _say(rules, value, "cardinal")
        minutes = int(m["time"][1:])
        if rules.clock is not None:
            hours, after = rules.clock
            tail = f" {_minutes(rules, minutes)} {after}" if minutes else ""
            return f"{head} {hours}{tail}" + _rest(m, rules)
        tail = "" if minutes == 0 else " " + _minutes(rules, minutes)
        return head + (" o'clock" if rules.code == "en" and not tail else tail) + _rest(m, rules)
    if suffix in rules.currencies:
        return _money(rules, value, rules.currencies[suffix])
    if m["cur"]:
        return _money(rules, value, rules.currencies.get(m["cur"], "")) + _rest(m, rules)
    if m["range"]:
        upper = _parse(m["range"].lstrip("-– "), rules)
        if upper is not None:
            spoken = f"{_say(rules, value, 'cardinal')} {rules.to} {_say(rules, upper, 'cardinal')}"
            return spoken + _rest(m, rules)
    if suffix and re.fullmatch(rules.ordinal, suffix.rstrip(".")):
        return _say(rules, value, "ordinal")
    if m["num"].isdigit() and _after_word(before, rules.ordinal_before):
        return _say(rules, value, "ordinal") + _rest(m, rules)
    if _looks_like_year(m, value, rules):
        return _say(rules, value, "year") + _rest(m, rules)
    return _say(rules, value, "cardinal") + _rest(m, rules)


def _after_word(before: str, pattern: str) -> bool:
    """Whether ``before`` ends with a word ``pattern`` matches (in any case, composed or not)
    and a space."""
    words = before.rsplit(None, 1)
    if not words or not before[-1:].isspace():
        return False
    return re.fullmatch(pattern, unicodedata.normalize("NFC", words[-1]), re.IGNORECASE) is not None


def _parse(number: str, rules: Rules) -> Decimal | None:
    thousands, decimal = (".", ",") if rules.decimal_comma else (",", ".")
    digits = re.sub(r"\s", "", number).replace(thousands, "").replace(decimal, ".")
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


def _say(rules: Rules, value: Decimal, to: str) -> str:
    if rules.minus is not None and value < 0:
        return f"{rules.minus} {_say(rules, -value, to)}"
    if rules.point is not None and value != value.to_integral_value():
        whole, _, decimals = f"{value:f}".partition(".")
        digits = decimals.rstrip("0")
        zeros = len(digits) - len(digits.lstrip("0"))
        spoken = [_say(rules, Decimal(0), "cardinal")] * zeros + [
            _say(rules, Decimal(digits[zeros:]), "cardinal")
        ]
        return " ".join([_say(rules, Decimal(whole), to), rules.point, *spoken])
    if rules.reader is not None and value == value.to_integral_value():
        read = rules.reader.ordinal if to == "ordinal" else rules.reader.cardinal
        return read(int(value))
    # a Decimal would lose its fraction in some languages (Italian reads 2.5 as "due")
    number: float | int = int(value) if value == value.to_integral_value() else float(value)
    try:
        return str(num2words(number, lang=rules.code, to=to))
    except (NotImplementedError, OverflowError, TypeError, ValueError, AttributeError):
        return str(num2words(number, lang=rules.code))


_MONTHS_EN = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)


def _date(rules: Rules, year: Decimal, month: int, day: int) -> str:
    """An ISO date: "March fifth, twenty twenty-four" in English; elsewhere day, month and
    year as numbers (num2words has no month names)."""
    if rules.date is not None:
        day_, month_ = (_say(rules, Decimal(n), "cardinal") for n in (day, month))
        return rules.date.format(day=day_, month=month_, year=_say(rules, year, "cardinal"))
    spoken_year = _say(rules, year, "year")
    if rules.code == "en" and 1 <= month <= 12:
        return f"{_MONTHS_EN[month - 1]} {_say(rules, Decimal(day), 'ordinal')}, {spoken_year}"
    day_month = f"{_say(rules, Decimal(day), 'ordinal')} {_say(rules, Decimal(month), 'cardinal')}"
    return f"{day_month} {spoken_year}"


def _minutes(rules: Rules, minutes: int) -> str:
    spoken = _say(rules, Decimal(minutes), "cardinal")
    return f"oh {spoken}" if rules.code == "en" and minutes < 10 else spoken


def _money(rules: Rules, value: Decimal, currency: str) -> str:
    """An amount with its currency's name; a whole amount without "and zero cents"."""
    plain = f"{_say(rules, value, 'cardinal')} {currency}"
    if rules.reader is not None:  # the currency is a name, said after the amount
        return plain
    try:
        spoken = str(num2words(value, lang=rules.code, to="currency", currency=currency))
    except (NotImplementedError, KeyError, AttributeError, ArithmeticError):
        # no currency reading in this language, or an amount too large for num2words'
        # currency arithmetic (decimal.InvalidOperation)
        return plain
    if value != value.to_integral_value():
        return spoken
    head = spoken.rpartition(str(num2words(0, lang=rules.code)))[0]
    return _JOINER.sub("", head) or spoken


_JOINER = re.compile(r"(?:,|\s+(?:and|et|und|con|e|ja|y))?\s*$")


def _looks_like_year(m: re.Match[str], value: Decimal, rules: Rules) -> bool:
    """A plain 4-digit number from 1100 to 2099 followed by no unit, sign or letter."""
    plain = m["num"].isdigit() and len(m["num"]) == 4
    followed = (m["suffix"] or "").strip()
    measured = followed in rules.units or followed == "%" or m["suffix"] == followed != ""
    return rules.years and plain and 1100 <= value < 2100 and not measured


def _rest(m: re.Match[str], rules: Rules) -> str:
    """What follows a number: a percent sign or unit said as words, another word kept."""
    suffix = m["suffix"] or ""
    word = suffix.strip()
    if word == "%":
        return rules.percent
    if word in rules.units:
        return " " + rules.units[word]
    glued_latin = suffix[:1].isascii() and suffix[:1].isalpha()  # "3pm" -> "three pm"
    return " " + suffix if glued_latin else suffix


# --------------------------------------------------------------------------- Chinese

_ZH_UNITS = {"km/h": "公里每小时", "km": "公里", "kg": "公斤", "cm": "厘米", "°C": "摄氏度"}
_ZH_CURRENCY = {"$": "美元", "€": "欧元", "£": "英镑", "¥": "元"}


def _render_zh(m: re.Match[str]) -> str:
    say = _zh_number
    number = m["num"].strip()
    suffix = (m["suffix"] or "").strip()
    if m["time"]:
        return f"{say(number)}点{say(m['time'][1:].lstrip('0') or '0')}分" + _zh_rest(suffix)
    if m["range"]:
        return f"{say(number)}至{say(m['range'].lstrip('-– '))}" + _zh_rest(suffix)
    if m["date"]:
        month, day = m["date"][1:].split("-")
        year = cn2an.an2cn(number, "direct")
        return f"{year}年{say(month.lstrip('0'))}月{say(day.lstrip('0'))}日"
    if suffix == "%":
        return f"百分之{say(number)}"
    if suffix.startswith("年") and len(number) == 4 and number.isdigit():
        return str(cn2an.an2cn(number, "direct")) + suffix
    if suffix in _ZH_CURRENCY:
        return say(number) + _ZH_CURRENCY[suffix]
    currency = _ZH_CURRENCY[m["cur"]] if m["cur"] else ""
    return say(number) + currency + _zh_rest(suffix)


def _zh_number(digits: str) -> str:
    """Digits read in Chinese ("1,000" is 一千, "-3.5" is 负三点五)."""
    return str(cn2an.an2cn(digits.replace(",", "")))


def _zh_rest(suffix: str) -> str:
    return _ZH_UNITS.get(suffix, suffix)

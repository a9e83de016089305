"""Vietnamese numbers: the reader's rules, one table, and the reader used by the normaliser."""

from __future__ import annotations

import unicodedata

import pytest

from f5serve.engine import vietnamese
from f5serve.engine.normalize import normalize_text

CARDINALS = [
    (0, "không"),
    (5, "năm"),
    (10, "mười"),
    (11, "mười một"),
    (14, "mười bốn"),
    (15, "mười lăm"),
    (20, "hai mươi"),
    (21, "hai mươi mốt"),
    (24, "hai mươi tư"),
    (25, "hai mươi lăm"),
    (55, "năm mươi lăm"),
    (101, "một trăm linh một"),
    (104, "một trăm linh bốn"),
    (105, "một trăm linh năm"),
    (110, "một trăm mười"),
    (111, "một trăm mười một"),
    (115, "một trăm mười lăm"),
    (121, "một trăm hai mươi mốt"),
    (1000, "một nghìn"),
    (1005, "một nghìn không trăm linh năm"),
    (1010, "một nghìn không trăm mười"),
    (1024, "một nghìn không trăm hai mươi tư"),
    (2024, "hai nghìn không trăm hai mươi tư"),
    (10000, "mười nghìn"),
    (21000, "hai mươi mốt nghìn"),
    (100000, "một trăm nghìn"),
    (1000000, "một triệu"),
    (1000001, "một triệu không trăm linh một"),
    (1005000, "một triệu không trăm linh năm nghìn"),
    (1234567, "một triệu hai trăm ba mươi tư nghìn năm trăm sáu mươi bảy"),
    (1000000000, "một tỷ"),
    (1000000005, "một tỷ không trăm linh năm"),
    (2000300000, "hai tỷ ba trăm nghìn"),
    (10**12, "một nghìn tỷ"),
    (25 * 10**15, "hai mươi lăm triệu tỷ"),
    (10**18 + 1, "một tỷ tỷ không trăm linh một"),
]


@pytest.mark.parametrize(("number", "words"), CARDINALS, ids=[str(n) for n, _ in CARDINALS])
def test_cardinals_follow_the_standard_rules(number: int, words: str) -> None:
    assert vietnamese.cardinal(number) == words


@pytest.mark.parametrize(
    ("number", "word"),
    [
        (1, "nhất"),
        (2, "hai"),
        (3, "ba"),
        (4, "tư"),
        (10, "mười"),
        (14, "mười bốn"),
        (21, "hai mươi mốt"),
    ],
)
def test_ordinals_say_nhat_and_tu(number: int, word: str) -> None:
    assert vietnamese.ordinal(number) == word


def test_a_negative_cardinal_is_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        vietnamese.cardinal(-1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Năm 2024.", "Năm hai nghìn không trăm hai mươi tư."),
        ("Có 105 người.", "Có một trăm linh năm người."),
        ("Nhiệt độ -15 độ.", "Nhiệt độ âm mười lăm độ."),
        ("Số -1.024,5.", "Số âm một nghìn không trăm hai mươi tư phẩy năm."),
        ("Tăng 21,04%.", "Tăng hai mươi mốt phẩy không bốn phần trăm."),
        (
            "Hạn 2024-12-25.",
            "Hạn ngày hai mươi lăm tháng mười hai năm hai nghìn không trăm hai mươi tư.",
        ),
        ("Lúc 21:45.", "Lúc hai mươi mốt giờ bốn mươi lăm phút."),
        (
            "Từ 1.000.001 đến 1.234.567.",
            "Từ một triệu không trăm linh một đến một triệu hai trăm ba mươi tư nghìn"
            " năm trăm sáu mươi bảy.",
        ),
        ("Giá 1.005.000đ.", "Giá một triệu không trăm linh năm nghìn đồng."),
        ("Giá $1.000.000.000.", "Giá một tỷ đô la."),
        (
            "Hạng thứ 1, thứ 4, thứ 14 và thứ 24.",
            "Hạng thứ nhất, thứ tư, thứ mười bốn và thứ hai mươi tư.",
        ),
        ("Thứ 4 và thứ 2-3.", "Thứ tư và thứ hai đến ba."),
    ],
)
def test_vietnamese_text_is_read_with_the_reader(text: str, expected: str) -> None:
    assert normalize_text(text, "vi") == expected


def test_thu_makes_an_ordinal_also_when_typed_with_combining_marks() -> None:
    decomposed = unicodedata.normalize("NFD", "thứ")
    assert decomposed != "thứ"
    assert normalize_text(f"Về {decomposed} 1.", "vi") == f"Về {decomposed} nhất."
    assert normalize_text("4 người.", "vi") == "bốn người."  # nothing before the number


def test_other_languages_keep_num2words() -> None:
    assert normalize_text("In 2024 we met 4 people.", "en") == (
        "In twenty twenty-four we met four people."
    )

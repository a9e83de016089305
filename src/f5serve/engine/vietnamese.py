"""Vietnamese whole numbers read as words, by the standard rules (num2words' ``vi`` breaks
several of them: it reads 2024 as "hai nghìn lẻ hai mươi bốn").

Digits are read in groups of three, each followed by its scale word: "nghìn" (10^3), "triệu"
(10^6), "tỷ" (10^9); above that the scale words combine ("nghìn tỷ" is 10^12, "triệu tỷ" 10^15,
"tỷ tỷ" 10^18). A group of zeros is skipped. Inside a number a group is read whole, hundreds
included, so a zero hundreds digit is "không trăm" (1005: "một nghìn không trăm linh năm");
the first group is read as it stands (105: "một trăm linh năm"). Within a group:

- a zero tens digit before a non-zero unit is :data:`ZERO_TENS` ("linh");
- 10 to 19 use "mười", tens from 20 "mươi" ("hai mươi");
- the unit 1 after tens from 20 is "mốt" ("hai mươi mốt"), 4 is :data:`FOUR_AFTER_TENS`
  ("hai mươi tư"), 5 after any non-zero tens "lăm" ("mười lăm", "hai mươi lăm");
- otherwise each digit is its own word, zero being "không".
"""

from __future__ import annotations

# "linh" is the northern and standard form (school books, banks, official documents); the
# south says "lẻ" (105: "một trăm lẻ năm").
ZERO_TENS = "linh"
# "tư" is the usual word for a unit 4 after tens from 20 ("hai mươi tư"); "bốn" is heard too.
FOUR_AFTER_TENS = "tư"

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_SCALES = ("", " nghìn", " triệu")  # within a block of nine digits
_BILLION = 10**9
_ORDINALS = {1: "nhất", 4: "tư"}  # "thứ nhất", "thứ tư"; other ordinals are cardinals


def cardinal(n: int) -> str:
    """``n`` (0 or more) in words: 2024 is "hai nghìn không trăm hai mươi tư"."""
    if n < 0:
        raise ValueError(f"a cardinal is 0 or more, not {n}")
    return _DIGITS[0] if n == 0 else _whole(n, leading=True)


def ordinal(n: int) -> str:
    """The word after "thứ" for the ``n``-th: "nhất" for 1, "tư" for 4, else the cardinal
    ("thứ hai", "thứ mười bốn")."""
    return _ORDINALS.get(n) or cardinal(n)


def _whole(n: int, *, leading: bool) -> str:
    """``n`` > 0; ``leading``: it starts the number (its first group is not padded)."""
    if n >= _BILLION:
        high, low = divmod(n, _BILLION)
        head = _whole(high, leading=leading) + " tỷ"
        return f"{head} {_whole(low, leading=False)}" if low else head
    words: list[str] = []
    for scale in (2, 1, 0):
        group = n // 1000**scale % 1000
        if group:
            words.append(_group(group, whole=bool(words) or not leading) + _SCALES[scale])
    return " ".join(words)


def _group(n: int, *, whole: bool) -> str:
    """Three digits (1 to 999); ``whole``: say a zero hundreds digit ("không trăm")."""
    hundreds, rest = divmod(n, 100)
    tens, unit = divmod(rest, 10)
    words = [_DIGITS[hundreds], "trăm"] if hundreds or whole else []
    if tens == 0:
        if unit:
            words += [ZERO_TENS, _DIGITS[unit]] if words else [_DIGITS[unit]]
        return " ".join(words)
    words += ["mười"] if tens == 1 else [_DIGITS[tens], "mươi"]
    if unit == 5:
        words.append("lăm")
    elif unit == 1 and tens > 1:
        words.append("mốt")
    elif unit == 4 and tens > 1:
        words.append(FOUR_AFTER_TENS)
    elif unit:
        words.append(_DIGITS[unit])
    return " ".join(words)

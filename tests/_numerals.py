"""A Chinese-numeral writer independent of the library, for round-trip tests of the geocoder."""

from __future__ import annotations


def int_to_chinese(n: int) -> str:
    """Chinese numerals for 0 < n < 10,000 (positional, 零 for inner zeros; 十二 not 一十二)."""
    digits = "零一二三四五六七八九"
    if 10 <= n < 20:
        return "十" + (digits[n - 10] if n > 10 else "")
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d == 0:
            zero = bool(out)
            continue
        out += ("零" if zero else "") + digits[d] + unit
        zero = False
    return out

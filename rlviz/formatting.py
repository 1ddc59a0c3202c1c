"""Printing numbers for checked notebook cells: fixed precision, never a signed zero.

The sign of a value that rounds to zero is float noise, and a notebook that printed it
("-0.0000") would fail nbval on another machine.
"""

from __future__ import annotations


def fmt(value: float, digits: int = 4, sign: bool = False) -> str:
    """``value`` rounded to ``digits`` decimals; with ``sign=True`` always signed ("+0.1234"),
    except that a value rounding to zero prints as an unsigned "0.0000".

    >>> fmt(-1e-9), fmt(0.25, 2, sign=True), fmt(-0.00006)
    ('0.0000', '+0.25', '-0.0001')
    """
    text = f"{float(value):{'+' if sign else ''}.{digits}f}"
    return text.lstrip("+-") if float(text) == 0 else text

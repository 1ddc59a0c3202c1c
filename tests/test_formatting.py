"""``fmt``: fixed precision, never a signed zero (whose sign is float noise)."""

from rlviz.formatting import fmt


def test_unsigned():
    assert fmt(-1e-9) == "0.0000"
    assert fmt(-0.0) == "0.0000"
    assert fmt(-0.00004, 4) == "0.0000"
    assert fmt(-0.00006, 4) == "-0.0001"
    assert fmt(1.23456, 2) == "1.23"


def test_signed():
    assert fmt(1e-9, sign=True) == "0.0000"
    assert fmt(-1e-9, sign=True) == "0.0000"
    assert fmt(0.3, sign=True) == "+0.3000"
    assert fmt(-0.00481, sign=True) == "-0.0048"
    assert fmt(-0.00004, digits=3, sign=True) == "0.000"

"""How numbers are written (``report.numbers``), against strings written out by hand."""

import math

from sparsebench.report.numbers import number, signed


def test_large_numbers_keep_their_integer_digits_with_separators():
    # Noise scores run to six digits: written out whole, never 1.564e+04 nor rounded to look exact.
    assert [signed(x) for x in (15640.6, -11219.4, 8815.0, 102545.3)] == ["+15,641", "-11,219", "+8,815", "+102,545"]
    assert number(537.0, 2) == "537" and number(12.3, 1) == "12"  # fewer digits asked than it has: all kept
    assert signed(999.96, 3) == "+1,000"  # rounding that carries into a new digit: not +1e+03
    assert number(1234.5678, 5) == "1,234.6" and number(2000.0) == "2,000"


def test_small_and_special_numbers_are_plain():
    assert [signed(x) for x in (0.0123456, -0.5, 0.0, 3.0)] == ["+0.01235", "-0.5", "0", "+3"]
    assert number(2.5e7) == "2.5e+07" and number(1.2e-5) == "1.2e-05"
    assert number(float("nan")) == number(None) == "nan"
    assert signed(math.inf) == "+inf" and number(-math.inf) == "-inf"


def test_an_interval_is_written_with_signs_and_a_missing_one_says_so():
    """A side of one run gives no interval: the page says "(no interval)", never "[nan, nan]"."""
    from sparsebench.report.numbers import bracket

    assert bracket(-0.5, 1.25) == "[-0.5, +1.25]"
    assert bracket(float("nan"), float("nan")) == "(no interval)"
    assert bracket(None, 2.0) == "(no interval)"

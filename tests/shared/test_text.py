"""The shared text helpers: numbers told from names, long name lists shortened."""

from datasentinel.text import is_number, shortened


def test_numbers_and_names():
    assert all(is_number(t) for t in ("1", " 2.5 ", "-1e3", "nan", "inf", 7))
    assert not any(is_number(t) for t in ("timestamp", "", "1,000", "sensor_01"))


def test_long_lists_are_shortened_with_the_count_left_out():
    assert shortened(["a", "b", "c"], 4) == "a, b, c"
    assert shortened(list("abcdef"), 4) == "a, b, c, d, ... 2 more"
    assert shortened([], 4) == ""

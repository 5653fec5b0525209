"""Severity grades a score by the share of held-out training rows below it: monotone, rising
above the highest held-out score, named in bands."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasentinel.severity import BANDS, band, severity, table_from_scores


@pytest.fixture(scope="module")
def table():
    held_out = np.random.default_rng(0).gamma(2.0, 0.5, size=4000)
    return table_from_scores(held_out, "validation")


def test_severity_is_the_share_of_held_out_rows_below(table):
    held_out = np.random.default_rng(0).gamma(2.0, 0.5, size=4000)
    probes = np.quantile(held_out, [0.1, 0.5, 0.9, 0.99])
    measured = severity(probes, table)
    assert np.allclose(measured, [0.1, 0.5, 0.9, 0.99], atol=0.005)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=50))
def test_severity_is_monotone_in_the_score(scores):
    held_out = np.random.default_rng(1).gamma(2.0, 0.5, size=500)
    ordered = np.sort(np.asarray(scores))
    graded = severity(ordered, table_from_scores(held_out, "validation"))
    assert (np.diff(graded) >= 0).all()
    assert ((graded >= 0) & (graded <= 1)).all()


def test_beyond_the_highest_held_out_score_it_keeps_rising(table):
    top = table.scores[-1]
    graded = severity(np.array([top, 2 * top, 10 * top, 1000 * top]), table)
    assert (np.diff(graded) > 0).all()
    assert graded[-1] < 1.0


def test_an_infinite_score_is_the_most_severe(table):
    assert severity(np.array([np.inf]), table)[0] == 1.0


def test_bands_by_rarity():
    assert [band(v) for v in (0.5, 0.95, 0.995, 0.9995, 0.99995)] == [name for _, name in BANDS]
    assert band(0.9499) == "normal"

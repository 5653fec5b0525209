"""One description of the score: the proto's comment, the plot's axis, the trainer's help and the
README say the same thing (they once said three: a mean squared error, a scaled error, a
calibrated maximum)."""

import re

import pytest

from tests.conftest import REPO

# The description's two claims: what the score measures, and its unit.
CLAIMS = (r"how\s+surprising", r"typical\s+training\s+row")


@pytest.mark.parametrize(
    "path",
    [
        "proto/datasentinel/v1/scoring.proto",
        "trainer/report/plots.py",
        "trainer/settings.py",
        "README.md",
    ],
)
def test_the_score_is_described_the_same_way(path):
    text = (REPO / path).read_text()
    for claim in CLAIMS:
        assert re.search(claim, text), f"{path} does not say the score is {claim}"


def test_no_stale_description_remains():
    proto = (REPO / "proto/datasentinel/v1/scoring.proto").read_text()
    assert "mean squared reconstruction error of the standardised features" not in proto

"""Progress reaches the log when stderr is not a terminal (Docker, CI, a pipe): a long run used to
print nothing until it ended."""

import logging

import numpy as np
import pytest
import torch

from datasentinel.trainer.data.dataset import split_dataset, synthetic_dataset
from datasentinel.trainer.detector import graph as graph_module
from datasentinel.trainer.detector.graph import build_scoring_graph, calibrate, score_rows
from datasentinel.trainer.fitting.progress import Progress
from datasentinel.trainer.fitting.training import fit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "datasentinel.trainer.fitting.progress"
    ]


def test_the_first_line_comes_two_seconds_in_then_every_ten(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    with Progress(epochs=5, enabled=True, clock=clock) as progress:
        progress.start_epoch()
        for now, rows in [(1.5, 100), (2.5, 200), (10.0, 800), (12.6, 1000)]:
            clock.now = now
            progress.batch(rows, 10_000)
    assert [line.split(":")[1] for line in _lines(caplog)] == [
        " 2% of the training rows, about 2.1 min per epoch",
        " 10% of the training rows, about 2.1 min per epoch",
    ]


def test_first_epoch_is_logged_with_its_time_when_not_on_a_terminal(quick_settings, caplog):
    caplog.set_level(logging.INFO)
    split = split_dataset(synthetic_dataset(300, seed=0), 0.2, seed=0)
    graph = build_scoring_graph(split.train.features, None, None)
    fit(graph, split.train.features, split.validation.features, quick_settings(progress=True))
    first = _lines(caplog)[0]
    assert first.startswith("epoch 1/10: train loss") and "per epoch, at most" in first


def test_a_long_epoch_logs_the_share_done_and_an_estimate(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    with Progress(epochs=20, enabled=True, clock=clock) as progress:
        progress.start_epoch()
        clock.now = 1.0
        progress.batch(256, 10_000)  # too soon for a line
        clock.now = 12.0
        progress.batch(2_000, 10_000)
        clock.now = 60.0
        progress.end_epoch(0.5, 0.6)
        progress.start_epoch()
        clock.now = 61.0
        progress.end_epoch(0.4, 0.5)  # within the interval: no line
    assert _lines(caplog) == [
        "epoch 1/20: 20% of the training rows, about 1.0 min per epoch",
        "epoch 1/20: train loss 0.5, validation loss 0.6; 1.0 min per epoch, at most 19.0 min "
        "more (early stopping may end sooner)",
    ]


def test_progress_off_logs_nothing(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    with Progress(epochs=5, enabled=False, clock=clock) as progress:
        progress.start_epoch()
        clock.now = 100.0
        progress.batch(1, 2)
        progress.end_epoch(0.5, 0.6)
    assert _lines(caplog) == []


def _calibration(graph) -> list[torch.Tensor]:
    scales = [group.autoencoder.member_scale.clone() for group in graph.groups]
    return [*scales, graph.component_scale.clone()]


def test_chunked_passes_equal_one_pass(monkeypatch):
    # Calibration and scoring go through the data in chunks to bound memory; the maths is the same.
    features = np.random.default_rng(0).normal(size=(3000, 6)).astype(np.float32)
    torch.manual_seed(0)
    graph = build_scoring_graph(features, [12], 3, members=3)
    calibrate(graph, features)
    whole_scales, whole_scores = _calibration(graph), score_rows(graph, features)
    monkeypatch.setattr(graph_module, "CHUNK_VALUES", 1)  # 256-row chunks
    calibrate(graph, features)
    for chunked, whole in zip(_calibration(graph), whole_scales, strict=True):
        torch.testing.assert_close(chunked, whole)
    np.testing.assert_allclose(score_rows(graph, features), whole_scores, rtol=1e-6)


def _first_column_sizes(chunked, rows: torch.Tensor) -> list[int]:
    """Runs ``chunked(rows, fn)`` with an fn that records each chunk's size; checks the result."""
    sizes = []

    def first_column(chunk: torch.Tensor) -> torch.Tensor:
        sizes.append(len(chunk))
        return chunk[:, 0]

    torch.testing.assert_close(chunked(rows, first_column), rows[:, 0])
    assert sum(sizes) == len(rows)
    return sizes


# The widest layer of a 500-feature autoencoder is its reconstruction (the hidden layer is capped
# at MAX_DEFAULT_HIDDEN).
WIDEST = 500


@pytest.mark.parametrize("members", [1, 5])
def test_chunks_hold_a_bounded_number_of_values(members):
    graph = build_scoring_graph(np.zeros((10, WIDEST), dtype=np.float32), None, None, members)
    rows = torch.zeros(100_000, WIDEST)
    autoencoder = graph.groups[0].autoencoder
    sizes = _first_column_sizes(lambda r, fn: graph_module.in_chunks(autoencoder, r, fn), rows)
    assert max(sizes) * members * WIDEST <= graph_module.CHUNK_VALUES
    # A whole-graph chunk holds every group's widest layers at once.
    sizes = _first_column_sizes(lambda r, fn: graph_module.graph_chunks(graph, r, fn), rows)
    assert max(sizes) * len(graph.groups) * members * WIDEST <= graph_module.CHUNK_VALUES

"""Progress reaches the log when stderr is not a terminal (Docker, CI, a pipe): a long run used to
print nothing until it ended."""

import logging

import numpy as np
import pytest
import torch

from datasentinel.trainer import model
from datasentinel.trainer.data import split_dataset, synthetic_dataset
from datasentinel.trainer.model import build_scoring_graph, calibrate_members, score_rows
from datasentinel.trainer.progress import Progress
from datasentinel.trainer.training import fit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "datasentinel.trainer.progress"]


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
        clock.now = 3.0
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


def test_chunked_passes_equal_one_pass(monkeypatch):
    # Calibration and scoring go through the data in chunks to bound memory; the maths is the same.
    features = np.random.default_rng(0).normal(size=(3000, 6)).astype(np.float32)
    torch.manual_seed(0)
    graph = build_scoring_graph(features, [12], 3, members=3)
    calibrate_members(graph, features)
    whole_scale, whole_scores = graph.autoencoder.member_scale.clone(), score_rows(graph, features)
    monkeypatch.setattr(model, "CHUNK_VALUES", 1)  # 256-row chunks
    calibrate_members(graph, features)
    torch.testing.assert_close(graph.autoencoder.member_scale, whole_scale)
    np.testing.assert_allclose(score_rows(graph, features), whole_scores, rtol=1e-6)


@pytest.mark.parametrize("members", [1, 5])
def test_chunks_hold_a_bounded_number_of_values(members):
    features = np.zeros((10, 500), dtype=np.float32)
    graph = build_scoring_graph(features, None, None, members=members)
    sizes = []

    def first_column(chunk: torch.Tensor) -> torch.Tensor:
        sizes.append(len(chunk))
        return chunk[:, 0]

    rows = torch.zeros(100_000, 500)
    torch.testing.assert_close(model.in_chunks(graph.autoencoder, rows, first_column), rows[:, 0])
    assert sum(sizes) == 100_000
    assert max(sizes) * members * 1000 <= model.CHUNK_VALUES  # 1000: the default hidden width

import numpy as np
import pytest
import torch

from datasentinel.trainer.data import split_dataset, synthetic_dataset
from datasentinel.trainer.model import build_scoring_graph, score_rows
from datasentinel.trainer.training import fit, trimmed_mean


@pytest.fixture
def split():
    return split_dataset(synthetic_dataset(500, seed=0), 0.2, seed=0)


def _fit(split, settings):
    torch.manual_seed(settings.seed)
    graph = build_scoring_graph(split.train.features, None, None)
    return graph, fit(graph, split.train.features, split.validation.features, settings)


def test_early_stopping_ends_before_max_epochs(split, quick_settings):
    # A learning rate this small leaves the validation loss flat: nothing counts as improving.
    settings = quick_settings(learning_rate=1e-9, epochs=50, patience=3)
    _, history = _fit(split, settings)
    assert history.best_epoch == 1
    assert history.epochs_run == 1 + settings.patience


def test_kept_weights_are_the_best_epochs(split, quick_settings):
    # A large learning rate on small batches makes the validation loss jump about, so the
    # last epoch is not the best one and restoring actually matters.
    settings = quick_settings(learning_rate=0.05, batch_size=32, epochs=40, patience=4)
    graph, history = _fit(split, settings)
    assert history.best_epoch < history.epochs_run
    # The exported graph's score and the training loss are the same quantity.
    scores = torch.from_numpy(score_rows(graph, split.validation.features))
    kept = trimmed_mean(scores, settings.trim_fraction).item()
    np.testing.assert_allclose(kept, min(history.validation_loss), rtol=1e-5)


def test_same_seed_trains_the_same_model(split, quick_settings):
    settings = quick_settings(epochs=3)
    first, _ = _fit(split, settings)
    second, _ = _fit(split, settings)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)

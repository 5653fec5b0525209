import numpy as np
import pytest
import torch

from datasentinel.model_config import load_config
from datasentinel.trainer.data.dataset import split_dataset, synthetic_dataset
from datasentinel.trainer.detector.graph import build_scoring_graph
from datasentinel.trainer.fitting.training import (
    MIN_BUDGET_EPOCHS,
    History,
    batch_rows,
    budget_epochs,
    fit,
    group_scores,
    patience_epochs,
    trimmed_mean,
)
from datasentinel.trainer.pipeline import train_and_export
from datasentinel.trainer.report.summary import format_summary


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
    # 400 rows are 4 steps of 100 rows an epoch: patience is raised to MIN_PATIENCE_STEPS steps.
    assert history.patience == patience_epochs(settings.patience, 400, 100) == 13
    assert history.epochs_run == 1 + history.patience
    assert not history.still_improving()


def test_small_tables_train_in_smaller_batches_unless_the_user_set_one():
    # A few hundred rows at 256 a batch were one or two optimiser steps an epoch.
    assert batch_rows(None, 100_000) == batch_rows(None, 1024) == 256
    assert batch_rows(None, 400) == 100  # 4 steps an epoch
    assert batch_rows(None, 144) == 36
    assert batch_rows(None, 72) == batch_rows(None, 5) == 32  # never below 32 rows
    assert batch_rows(64, 400) == batch_rows(64, 100_000) == 64  # the user's own, as set


def test_the_log_names_the_batch_a_small_table_trains_in(split, quick_settings, caplog):
    caplog.set_level("INFO", logger="datasentinel.trainer.fitting.training")
    _fit(split, quick_settings(epochs=1))
    assert "training on 400 rows x 8 features in batches of 100" in caplog.text


def test_kept_weights_are_the_best_epochs(split, quick_settings):
    # A large learning rate on small batches makes the validation loss jump about, so the
    # last epoch is not the best one and restoring actually matters.
    settings = quick_settings(learning_rate=0.05, batch_size=32, epochs=40, patience=4)
    graph, history = _fit(split, settings)
    assert history.best_epoch < history.epochs_run
    # The validation loss of the kept weights, computed afresh, is the best one recorded.
    rows = torch.from_numpy(split.validation.features)
    with torch.no_grad():
        kept = sum(
            trimmed_mean(group_scores(group)(rows), settings.trim_fraction).item()
            for group in graph.groups
        )
    np.testing.assert_allclose(kept, min(history.validation_loss), rtol=1e-5)


def test_same_seed_trains_the_same_model(split, quick_settings):
    settings = quick_settings(epochs=3)
    first, _ = _fit(split, settings)
    second, _ = _fit(split, settings)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("patience", "rows", "expected"),
    [(10, 200, 50), (10, 1000, 13), (10, 100_000, 10)],
    ids=["one-step-an-epoch", "four-steps-an-epoch", "many-steps-an-epoch"],
)
def test_patience_holds_at_least_50_optimiser_steps(patience, rows, expected):
    assert patience_epochs(patience, rows, 256) == expected


def _history(validation_losses: list[float], patience: int) -> History:
    history = History(patience=patience)
    for loss in validation_losses:
        history.record(loss, loss)
    return history


def test_history_cut_off_while_improving_says_so():
    assert _history([3.0, 2.0, 1.5, 1.4], patience=3).still_improving()


def test_history_that_ran_out_of_patience_is_not_still_improving():
    assert not _history([3.0, 2.0, 2.5, 2.1, 2.2], patience=3).still_improving()


def test_run_cut_off_by_the_epoch_cap_warns_in_config_json(quick_settings):
    result = train_and_export(quick_settings(synthetic_rows=200, epochs=3))
    assert result.history.epochs_run == 3 and result.history.still_improving()
    cap_warnings = [w for w in result.config.training.warnings if "--epochs 3" in w]
    assert len(cap_warnings) == 1 and "still improving" in cap_warnings[0]
    assert (
        load_config(result.config_path.parent).training.warnings == result.config.training.warnings
    )


def test_the_fit_budget_shrinks_the_epochs_as_rows_x_features_grow():
    assert budget_epochs(4e8, 80_000, 500) == 10
    assert budget_epochs(4e8, 1_000, 10) == 40_000
    assert budget_epochs(4e8, 1_000_000, 1_000) == MIN_BUDGET_EPOCHS


def test_a_fit_cut_short_by_the_budget_says_so(quick_settings):
    # 1200 training rows x 8 features: a budget of 1e5 cells allows 10 epochs of --epochs 50.
    result = train_and_export(quick_settings(epochs=50, patience=50, fit_budget=1e5))
    history = result.history
    assert history.epoch_cap == 10 == history.epochs_run and history.cut_by_budget()
    (warning,) = [w for w in result.config.training.warnings if "fit budget" in w]
    assert "--fit-budget 100000" in warning and "still improving" in warning
    assert "of the fit budget's 10: cut short by it" in format_summary(result)

"""The short human-readable block printed when a run ends."""

from __future__ import annotations

from datasentinel.model_config import ModelConfig, TrainingSummary
from datasentinel.text import shortened
from datasentinel.trainer.pipeline import TrainingResult


def format_summary(result: TrainingResult) -> str:
    config, training = result.config, result.config.training
    lines = [
        "Training finished",
        f"  data        {training.data_source}",
        f"  rows        {training.rows_train} train / {training.rows_validation} validation",
        f"  features    {config.input_dim}: {shortened(config.feature_names, 6)}",
        f"  epochs      {training.epochs_run} run{_budget(result)}, best {training.best_epoch} "
        f"(early-stopping loss {training.best_validation_loss:.4g})",
        # The loss early stopping compared: worst rows left out (--trim-fraction), members'
        # errors not yet divided by their typical error. Spelled out: the score is calibrated.
        "              (trimmed, before member calibration: not the threshold's units)",
        f"  threshold   {config.threshold:.4g} "
        f"({training.threshold_quantile:g} quantile of {_threshold_scores(training)})",
        "              (scores are in units of a typical training row, which scores about 1)",
    ]
    lines += _columns(config)
    lines += [f"  warning     {warning}" for warning in training.warnings]
    evaluation = result.evaluation
    if evaluation is not None:
        lines += [
            f"  validation  ROC-AUC {evaluation.roc_auc:.4f}, PR-AUC "
            f"{evaluation.average_precision:.4f} (held-back rows)",
            f"              precision {evaluation.precision:.3f}, recall {evaluation.recall:.3f}, "
            f"F1 {evaluation.f1:.3f}, flagged {evaluation.flagged_share:.1%} (score > threshold)",
        ]
    lines.append(f"  version     {config.model_version}")
    lines.append("  wrote")
    lines += [f"    {path}" for path in [result.model_path, result.config_path, *result.plot_paths]]
    return "\n".join(lines)


def _columns(config: ModelConfig) -> list[str]:
    lines = []
    columns, missing = config.columns, config.missing_values
    if columns is not None and (columns.keys or columns.ignored):
        keys = shortened(columns.keys, 6) or "none"
        ignored = shortened(columns.ignored, 6) or "none"
        lines.append(f"  columns     keys (kept with each row): {keys}; ignored: {ignored}")
    if missing is not None and missing.training_cells:
        lines.append(
            f"  missing     {missing.training_cells} cells, filled with the column's training "
            "median (as the model fills them when scoring)"
        )
    return lines


def _threshold_scores(training: TrainingSummary) -> str:
    if training.threshold_source == "out_of_fold":
        return f"out-of-fold scores of {training.threshold_rows} rows, cross-fitted"
    return f"{training.threshold_rows} validation scores"


def _budget(result: TrainingResult) -> str:
    history = result.history
    if not history.capped_by_budget:
        return ""
    cut = ": cut short by it" if history.cut_by_budget() else ""
    return f" of the fit budget's {history.epoch_cap}{cut}"

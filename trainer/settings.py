"""The trainer's settings: one class, read from the command line and ``TRAINER_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from datasentinel.settings_loader import COMMAS


class TrainerSettings(BaseSettings):
    """Trains an anomaly detector and writes model.onnx and config.json. A row's score says how
    surprising it is next to the training data (a typical training row scores about 1): 1 plus
    the mean of the two largest of three calibrated surprises (two autoencoder groups'
    reconstruction errors and a per-feature tail table), each in units of its own spread of
    typical training rows."""

    model_config = SettingsConfigDict(
        env_prefix="TRAINER_",
        cli_kebab_case=True,
        cli_prog_name="datasentinel-train",
        cli_implicit_flags=True,
        extra="ignore",
    )

    data: Path | None = Field(
        default=None,
        json_schema_extra={"metavar": "FILE"},
        description="CSV file (comma-separated, UTF-8) with a header row (see --csv-header): "
        "numeric feature columns (empty cells are filled with the column's training median), "
        "and any id, text or date/time columns, which are kept with each row as keys (see "
        "--key-columns); unset = the built-in synthetic sensor data. Env: TRAINER_DATA.",
    )
    label_column: str | None = Field(
        default=None,
        json_schema_extra={"metavar": "COLUMN"},
        description="Column of the CSV holding 0 (normal) / 1 (anomaly); excluded from the "
        "features and used only to evaluate the model. Env: TRAINER_LABEL_COLUMN.",
    )
    key_columns: Annotated[list[str] | None, NoDecode, COMMAS] = Field(
        default=None,
        json_schema_extra={"metavar": "LIST"},
        description="Columns kept with each row but never features: ids, timestamps, entities, "
        "e.g. row_id,recorded_at (text and date/time columns are keys without asking). "
        "Env: TRAINER_KEY_COLUMNS.",
    )
    ignore_columns: Annotated[list[str] | None, NoDecode, COMMAS] = Field(
        default=None,
        json_schema_extra={"metavar": "LIST"},
        description="Columns left out of everything, e.g. notes,operator. "
        "Env: TRAINER_IGNORE_COLUMNS.",
    )
    feature_columns: Annotated[list[str] | None, NoDecode, COMMAS] = Field(
        default=None,
        json_schema_extra={"metavar": "LIST"},
        description="Exactly these columns are the features, trusted as they are; every other "
        "column but the label (and --ignore-columns) is a key. Unset = every numeric column "
        "that is not a key, ignored or the label, and one that looks like a row index, a "
        "timestamp or a label is refused until named in one of these lists. "
        "Env: TRAINER_FEATURE_COLUMNS.",
    )
    csv_header: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="Whether the CSV's first line names the columns: auto = yes, but a first "
        "line made only of numbers is refused (it looks like data); yes = it does, even if the "
        "names are numbers; no = it is data and the columns are named column_1, column_2, ... "
        "Env: TRAINER_CSV_HEADER.",
    )
    models_dir: Path = Field(
        default=Path("models"),
        # The engine reads MODELS_DIR too, so one variable points both at the same folder.
        validation_alias=AliasChoices("models_dir", "MODELS_DIR"),
        description="Folder to write model.onnx, config.json and the plots into. Env: MODELS_DIR.",
    )
    synthetic_rows: PositiveInt = Field(
        default=20_000,
        description="Rows of synthetic data to generate when no CSV is given. "
        "Env: TRAINER_SYNTHETIC_ROWS.",
    )
    seed: int = Field(
        default=0,
        ge=0,
        description="Seed for the data split, the weights and the batch order. Env: TRAINER_SEED.",
    )
    epochs: PositiveInt = Field(
        # A cap, not a budget: early stopping ends training. At 200, 27 of 85 runs on small
        # public sets were cut off, 18 of them still improving; a run that reaches this cap
        # while improving says so in the log and in config.json's training.warnings.
        default=1000,
        description="Most epochs to train; early stopping ends sooner, and a run cut off here "
        "while still improving is reported. Env: TRAINER_EPOCHS.",
    )
    fit_budget: PositiveFloat = Field(
        # Rows x features x epochs: the training's work grows with all three, so the epochs it may
        # take shrink as the table grows. 4e8 caps none of the development suite's or the ODDS
        # sets' fits (the largest, 3,900 x 36 and 23,600 x 9 training rows, could run 2,800
        # and 1,900 epochs; early stopping ends them at 30-300) and lets 80,000 x 500 training
        # rows run 10 epochs (about 15 s each here) where --epochs alone allowed 4 h.
        default=4e8,
        description="Most rows x features x epochs to train on: training stops after "
        "max(5, this / (training rows x features)) epochs if --epochs or early stopping has "
        "not ended it, and the summary says so when that cut it short. Env: TRAINER_FIT_BUDGET.",
    )
    patience: PositiveInt = Field(
        default=10,
        description="Stop after this many epochs without a better validation loss (and never "
        "fewer than 50 optimiser steps: a small table takes a few steps per epoch). "
        "Env: TRAINER_PATIENCE.",
    )
    batch_size: PositiveInt | None = Field(
        default=None,
        description="Rows per mini-batch; unset = 256, lowered on small tables so that an epoch "
        "takes at least 4 optimiser steps (never below 32 rows). Env: TRAINER_BATCH_SIZE.",
    )
    learning_rate: PositiveFloat = Field(
        default=3e-3, description="Adam learning rate. Env: TRAINER_LEARNING_RATE."
    )
    hidden_dims: Annotated[list[PositiveInt] | None, NoDecode, COMMAS] = Field(
        default=None,
        description="Widths of the encoder's hidden layers, e.g. 32,16 (the decoder mirrors "
        "them); unset = one layer of max(2*features, 16). Env: TRAINER_HIDDEN_DIMS.",
    )
    latent_dim: PositiveInt | None = Field(
        default=None,
        description="Width of the widest member's bottleneck; unset = about half the number of "
        "features, at most 8. Env: TRAINER_LATENT_DIM.",
    )
    trim_fraction: float = Field(
        # Measured on the ODDS data (benchmarks/DETECTION.md): 0.2 beat 0.1 and 0.3.
        default=0.2,
        ge=0,
        lt=1,
        description="Share of each batch's worst-reconstructed rows left out of the loss, so "
        "anomalies in the training data are not learned; 0 = plain mean. "
        "Env: TRAINER_TRIM_FRACTION.",
    )
    ensemble_size: PositiveInt = Field(
        default=5,
        description="Autoencoders per group, trained side by side: in the narrow group all but "
        "one with bottlenecks from 1 to 3 wide, the last --latent-dim wide; a group's term for a "
        "feature is its members' mean calibrated error. Env: TRAINER_ENSEMBLE_SIZE.",
    )
    validation_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of rows held out for early stopping, the threshold and the "
        "evaluation. Env: TRAINER_VALIDATION_FRACTION.",
    )
    threshold_quantile: float = Field(
        # The validation split holds anomalies too, so the threshold should sit near
        # 1 - (expected anomaly rate): the built-in data has 2%. Measured on unseen built-in
        # data: 0.98 gave precision 0.86 / recall 1.0; 0.99 gave 1.0 / 0.63.
        default=0.98,
        gt=0,
        lt=1,
        description="Quantile of held-out scores (the validation split's, or out-of-fold "
        "scores when it is small) used as the anomaly threshold: about "
        "1 - the expected share of anomalies. Env: TRAINER_THRESHOLD_QUANTILE.",
    )
    torch_threads: PositiveInt = Field(
        default=1,
        # Measured on a 2-core machine: the model is too small to split; 2 threads ran 3-30x slower.
        description="CPU threads torch may use; 1 is fastest for a model this small. "
        "Env: TRAINER_TORCH_THREADS.",
    )
    plots: bool = Field(
        default=True,
        description="Write training_loss.png and validation_scores.png. Env: TRAINER_PLOTS.",
    )
    progress: bool = Field(
        default=True,
        description="Report progress: a line in the log at the first epoch and then at most "
        "every few seconds (with the time per epoch), plus a progress bar when stderr is a "
        "terminal. Env: TRAINER_PROGRESS.",
    )

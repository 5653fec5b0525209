"""The autoencoder ensemble and the scoring graph that is exported: raw features in, scores out."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import torch
from torch import nn

# IQR / 1.349 is the std of a normal distribution: robust scales stay comparable to z-scores.
IQR_TO_STD = 1.349

# Where feature errors (in units of a member's typical row error) start to grow only
# logarithmically. Measured on the ODDS data (benchmarks/DETECTION.md, 3 seeds): without a knee
# 0.791 ROC-AUC on arrhythmia (274 features, many sparse), 64 -> 0.812, 32 -> 0.818; thyroid
# (6 features) loses a little (0.989 -> 0.985 / 0.983), a knee of 16 or less more (0.980; 4: 0.969).
ERROR_KNEE = 32.0

# The default widest bottleneck (see default_latent_dim) and the narrow members' widest (see
# latent_widths).
MAX_DEFAULT_LATENT = 8
NARROW_WIDEST = 3

# The smallest typical error a member is calibrated to: a mean squared error of 1e-3 in units of
# each feature's spread (an RMS error of about 3%) counts as exact reconstruction. Below it the
# calibrated score of a normal row is float32 rounding divided by rounding: on data a member can
# copy (2 columns, one a multiple of the other; a duplicated column) ONNX Runtime and torch then
# disagree in the 4th digit and the ranking of normal rows is noise. Trained members on the
# built-in and ODDS data sit at 2.5e-3 and above, so this changes none of them.
MIN_MEMBER_SCALE = 1e-3

# Whole-dataset passes (calibration, validation loss, scoring) go in chunks: every member's
# hidden layer for every row at once was most of the memory of a wide run (100k x 500: 4.1 GB).
CHUNK_VALUES = 1 << 22


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers applied at once: ``[M, N, in] -> [M, N, out]``.
    One batched matmul instead of a Python loop keeps an ensemble almost as fast as one model,
    and exports as a single MatMul."""

    def __init__(self, members: int, n_in: int, n_out: int) -> None:
        super().__init__()
        # nn.Linear's default initialisation, drawn independently for each member.
        bound = 1 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(members, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class Autoencoder(nn.Module):
    """``members`` MLP autoencoders, each an encoder to a narrow latent code and a mirrored
    decoder back, on standardised rows. Input ``[N, D]``, reconstructions ``[M, N, D]``."""

    def __init__(self, input_dim: int, hidden_dims: list[int], latent_widths: list[int]) -> None:
        super().__init__()
        self.members = len(latent_widths)
        latent_dim = max(latent_widths)
        self.encoder = _mlp(self.members, [input_dim, *hidden_dims, latent_dim])
        self.decoder = _mlp(self.members, [latent_dim, *reversed(hidden_dims), input_dim])
        # Member m uses only the first latent_widths[m] units of the code.
        mask = torch.arange(latent_dim) < torch.tensor(latent_widths)[:, None]
        self.register_buffer("latent_mask", mask.float().unsqueeze(1))
        # Each member's typical error on normal rows, set by calibrate_members after training.
        self.register_buffer("member_scale", torch.ones(self.members, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        code = self.encoder(z.expand(self.members, *z.shape)) * self.latent_mask
        return self.decoder(code)


def _mlp(members: int, widths: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them but not after the last: the latent code and the
    reconstruction of standardised values must be free to go negative."""
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(widths):
        layers += [EnsembleLinear(members, n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def member_errors(autoencoder: Autoencoder, z: torch.Tensor) -> torch.Tensor:
    """Squared error per member and feature of standardised rows: ``[N, D] -> [M, N, D]``. The
    training loss and the exported score are both means of this, so they cannot drift apart."""
    return (z - autoencoder(z)) ** 2


def reconstruction_errors(autoencoder: Autoencoder, z: torch.Tensor) -> torch.Tensor:
    """The ensemble's error per feature ``[N, D]``: each member's squared error in units of its
    own typical error (so a narrow member's larger errors on every row do not drown out what the
    wider ones see), softened above ``ERROR_KNEE`` and averaged over members."""
    return soften(member_errors(autoencoder, z) / autoencoder.member_scale).mean(dim=0)


def soften(errors: torch.Tensor) -> torch.Tensor:
    """``k * log(1 + e / k)`` with ``k = ERROR_KNEE``: about ``e`` for ``e`` well below ``k``,
    logarithmic above, so one feature far off (a rare value of a sparse feature) cannot outweigh
    many features moderately off. Monotone: the order of rows by any one error is kept."""
    return ERROR_KNEE * torch.log1p(errors / ERROR_KNEE)


@torch.no_grad()
def calibrate_members(graph: ScoringGraph, train_features: np.ndarray) -> None:
    """Sets each member's scale to its median row error on the training rows (the median, not
    the mean: those rows hold anomalies)."""
    graph.eval()
    z = graph.standardise(torch.as_tensor(train_features, dtype=torch.float32))
    autoencoder = graph.autoencoder
    row_errors = in_chunks(autoencoder, z, lambda chunk: member_errors(autoencoder, chunk).mean(2))
    scale = row_errors.median(dim=1).values.clamp_min(MIN_MEMBER_SCALE)
    graph.autoencoder.member_scale.copy_(scale[:, None, None])


def in_chunks(
    autoencoder: Autoencoder, rows: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``fn`` over ``rows`` a chunk at a time, results joined on their last axis (rows). A chunk
    holds at most ``CHUNK_VALUES`` values of every member's widest layer."""
    widest = max(layer.weight.shape[-1] for layer in _linear_layers(autoencoder))
    size = max(256, CHUNK_VALUES // (autoencoder.members * widest))
    return torch.cat([fn(chunk) for chunk in rows.split(size)], dim=-1)


def _linear_layers(autoencoder: Autoencoder) -> list[EnsembleLinear]:
    modules = [*autoencoder.encoder, *autoencoder.decoder]
    return [m for m in modules if isinstance(m, EnsembleLinear)]


class ScoringGraph(nn.Module):
    """What ``model.onnx`` computes: scale raw features with the training split's centre and
    scale, reconstruct with every member, and return ``(score [N], feature_errors [N, D])``:
    the members' mean calibrated, softened squared error per feature (reconstruction_errors),
    and its mean over features."""

    def __init__(self, autoencoder: Autoencoder, centre: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        # Named mean/std because config.json's normalisation fields carry them; they hold the
        # robust centre (median) and scale (see fit_standardisation), which the graph applies.
        self.register_buffer("mean", torch.as_tensor(centre, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(scale, dtype=torch.float32))

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature_errors = reconstruction_errors(self.autoencoder, self.standardise(features))
        return feature_errors.mean(dim=1), feature_errors


def fit_standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature median and IQR / 1.349 (float32): training data holds anomalies, and they pull
    the mean and inflate the std, which shrinks the very deviations that should stand out. Where
    the IQR is 0 (a mostly constant or rare-valued feature) the std is the scale; a constant
    feature gets 1, not 0: its scaled value is then 0 in training and any change still shows."""
    centre = np.median(features, axis=0).astype(np.float64)
    q25, q75 = np.percentile(features, [25, 75], axis=0).astype(np.float64)
    scale = (q75 - q25) / IQR_TO_STD
    scale = np.where(scale > 0, scale, features.std(axis=0, dtype=np.float64))
    scale[np.ptp(features, axis=0) == 0] = 1.0
    return centre.astype(np.float32), scale.astype(np.float32)


def default_hidden_dims(input_dim: int) -> list[int]:
    """One hidden layer twice as wide as the input (at least 16): room to model the non-linear
    relations between features before squeezing them through the bottleneck."""
    return [max(2 * input_dim, 16)]


def default_latent_dim(input_dim: int) -> int:
    """About half the inputs, at most ``MAX_DEFAULT_LATENT``: the widest member's code. Narrower
    loses normal structure (on the synthetic data, 8 sensors driven by 3 hidden signals, latent 2
    gave ROC-AUC 0.97, 3-4 gave 1.0); wider lets the network copy anomalies through, which the cap
    stops on wide data (arrhythmia, 274 features: uncapped 137 gave 0.781, 8 gave 0.791). Kept
    below ``input_dim`` so there is a bottleneck at all."""
    half = min(max(2, math.ceil(input_dim / 2)), MAX_DEFAULT_LATENT)
    return min(half, max(1, input_dim - 1))


def build_scoring_graph(
    train_features: np.ndarray,
    hidden_dims: list[int] | None,
    latent_dim: int | None,
    members: int = 1,
) -> ScoringGraph:
    """A fresh (untrained) graph whose scaling is fitted on ``train_features``."""
    input_dim = train_features.shape[1]
    hidden = default_hidden_dims(input_dim) if hidden_dims is None else hidden_dims
    latent = default_latent_dim(input_dim) if latent_dim is None else latent_dim
    centre, scale = fit_standardisation(train_features)
    widths = latent_widths(latent, members)
    return ScoringGraph(Autoencoder(input_dim, hidden, widths), centre, scale)


def latent_widths(widest: int, members: int) -> list[int]:
    """All members but the last spread geometrically from 1 to 3 wide, the last ``widest``: e.g.
    1, 1, 2, 3, 8 for five. No one width suits every dataset: on the ODDS data a 1-wide code found
    the anomalies best (they sit far out along the main directions, which a wide code
    reconstructs), while the built-in data needs 3 to model its normal structure. Weighting the
    narrow end beat a plain 1..widest spread (pendigits 0.941 -> 0.960, 3 seeds)."""
    if members == 1:
        return [widest]
    narrow = members - 1
    spread = [round(NARROW_WIDEST ** (m / max(1, narrow - 1))) for m in range(narrow)]
    return [min(width, widest) for width in spread] + [widest]


@torch.no_grad()
def score_rows(graph: ScoringGraph, features: np.ndarray) -> np.ndarray:
    """Anomaly scores ``[N]`` of raw feature rows, by the exported graph's own maths."""
    graph.eval()
    rows = torch.as_tensor(features, dtype=torch.float32)
    return in_chunks(graph.autoencoder, rows, lambda chunk: graph(chunk)[0]).numpy()

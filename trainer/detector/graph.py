"""The autoencoder groups, the tail table and the scoring graph that is exported: raw features in
(missing values as NaN), scores, per-feature terms and expected values out."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from datasentinel.trainer.detector.scaling import robust_scaling, spread_scaling
from datasentinel.trainer.detector.tail import TailTerms

# Where feature errors (in units of a member's typical row error) start to grow only
# logarithmically. Measured on the ODDS data (benchmarks/DETECTION.md, 3 seeds): without a knee
# 0.791 ROC-AUC on arrhythmia (274 features, many sparse), 64 -> 0.812, 32 -> 0.818; thyroid
# (6 features) loses a little (0.989 -> 0.985 / 0.983), a knee of 16 or less more (0.980; 4: 0.969).
ERROR_KNEE = 32.0

# The default widest bottleneck (see default_latent_dim) and the narrow members' widest (see
# latent_widths).
MAX_DEFAULT_LATENT = 8
NARROW_WIDEST = 3
# The default hidden layer's widest (see default_hidden_dims).
MAX_DEFAULT_HIDDEN = 128
# The spread-scaled group's widest code (see wide_widths).
WIDE_WIDEST = 16

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


def reconstruction_errors(
    autoencoder: Autoencoder, z: torch.Tensor, reconstruction: torch.Tensor | None = None
) -> torch.Tensor:
    """The ensemble's error per feature ``[N, D]``: each member's squared error in units of its
    own typical error (so a narrow member's larger errors on every row do not drown out what the
    wider ones see), softened above ``ERROR_KNEE`` and averaged over members. ``reconstruction``
    is ``autoencoder(z)`` when the caller has it already."""
    if reconstruction is None:
        reconstruction = autoencoder(z)
    return soften((z - reconstruction) ** 2 / autoencoder.member_scale).mean(dim=0)


def soften(errors: torch.Tensor) -> torch.Tensor:
    """``k * log(1 + e / k)`` with ``k = ERROR_KNEE``: about ``e`` for ``e`` well below ``k``,
    logarithmic above, so one feature far off (a rare value of a sparse feature) cannot outweigh
    many features moderately off. Monotone: the order of rows by any one error is kept."""
    return ERROR_KNEE * torch.log1p(errors / ERROR_KNEE)


# Where each component's spread of typical training rows is read (calibrate): its median row
# and this quantile. Measured offline on 14 sets x 2 seeds (benchmarks/HISTORY.md, issue 19):
# 0.75 / 0.8 / 0.85 gave the same worst gap (-0.033/-0.034); 0.9 and above let the share of
# anomalies in the training rows (satellite: 32%) inflate the spread of the components that
# see them (satellite 0.70).
COMBINE_QUANTILE = 0.8
# A component whose spread (quantile - median, in units of its median row) is below this is
# treated as this: a component that scores every training row alike must not divide by ~0.
MIN_COMPONENT_SPREAD = 0.05
# The score is the mean of this many components' surprises, the largest (combine).
COMBINED_COMPONENTS = 2

# A component whose median training row is below this is treated as this: a component that
# explains the training rows perfectly (a constant column's tail terms) must not divide by ~0.
MIN_COMPONENT_SCALE = 1e-3
# An autoencoder group's median training row is about 1 by construction (each member is divided
# by its own median row error); it falls far below only when its members sit at
# MIN_MEMBER_SCALE (data they copy exactly), and dividing by it again would scale float rounding
# up to a score (ONNX and torch then disagree in the 4th digit). Ordinary data: 1.05-1.15.
MIN_GROUP_SCALE = 0.5


@torch.no_grad()
def calibrate_members(group: MemberGroup, train_features: np.ndarray) -> None:
    """Sets each member's scale to its median row error on the training rows (the median, not
    the mean: those rows hold anomalies)."""
    group.eval()
    rows = torch.as_tensor(train_features, dtype=torch.float32)
    autoencoder = group.autoencoder

    def row_errors_of(chunk: torch.Tensor) -> torch.Tensor:
        return member_errors(autoencoder, group.standardise(chunk)).mean(2)

    row_errors = in_chunks(autoencoder, rows, row_errors_of)
    scale = row_errors.median(dim=1).values.clamp_min(MIN_MEMBER_SCALE)
    autoencoder.member_scale.copy_(scale[:, None, None])


@torch.no_grad()
def calibrate(graph: ScoringGraph, train_features: np.ndarray) -> None:
    """Calibrates every group's members, then puts each component in units of its own spread of
    typical training rows: with ``m`` its median training row and ``q`` its COMBINE_QUANTILE row
    (of the row means, after dividing by the median), its terms are divided by ``m (q - m)``
    and its offset is ``1 / (q - m)``, so that its row mean less the offset is 0 for the median
    training row and 1 for the COMBINE_QUANTILE one (ScoringGraph)."""
    for group in graph.groups:
        calibrate_members(group, train_features)
    graph.component_scale.fill_(1.0)
    graph.component_offset.fill_(0.0)
    rows = torch.as_tensor(train_features, dtype=torch.float32)
    means = graph_chunks(graph, rows, lambda chunk: graph.component_errors(chunk).mean(2).T)
    median = means.median(dim=1).values.clamp_min(MIN_COMPONENT_SCALE)
    median[:-1].clamp_(min=MIN_GROUP_SCALE)
    relative = means / median[:, None]
    upper = torch.quantile(relative, COMBINE_QUANTILE, dim=1)
    spread = (upper - relative.median(dim=1).values).clamp_min(MIN_COMPONENT_SPREAD)
    graph.component_scale.copy_(median * spread)
    graph.component_offset.copy_(relative.median(dim=1).values / spread)


def in_chunks(
    autoencoder: Autoencoder, rows: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``fn`` over ``rows`` a chunk at a time, results joined on their last axis (rows). A chunk
    holds at most ``CHUNK_VALUES`` values of every member's widest layer."""
    return _chunked(rows, _values_per_row(autoencoder), fn)


def graph_chunks(
    graph: ScoringGraph, rows: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``in_chunks`` for the whole graph: a chunk fits every group's widest layers at once."""
    per_row = sum(_values_per_row(group.autoencoder) for group in graph.groups)
    return _chunked(rows, per_row, fn)


def _values_per_row(autoencoder: Autoencoder) -> int:
    widest = max(layer.weight.shape[-1] for layer in _linear_layers(autoencoder))
    return autoencoder.members * widest


def _chunked(
    rows: torch.Tensor, values_per_row: int, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    size = max(256, CHUNK_VALUES // values_per_row)
    return torch.cat([fn(chunk) for chunk in rows.split(size)], dim=-1)


def _linear_layers(autoencoder: Autoencoder) -> list[EnsembleLinear]:
    modules = [*autoencoder.encoder, *autoencoder.decoder]
    return [m for m in modules if isinstance(m, EnsembleLinear)]


class MemberGroup(nn.Module):
    """Autoencoders that share one scaling of the input (scaling.py). ``feature_errors`` is the
    members' mean calibrated, softened squared error per feature (reconstruction_errors)."""

    def __init__(self, autoencoder: Autoencoder, centre: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        # The centre and scale of scaling.py, which the graph applies (config.json's
        # normalisation carries the first group's).
        self.register_buffer("centre", torch.as_tensor(centre, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.centre) / self.scale

    def feature_errors(self, features: torch.Tensor) -> torch.Tensor:
        return reconstruction_errors(self.autoencoder, self.standardise(features))

    def terms_and_expected(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``feature_errors`` and what the members expected for each feature, in raw units: the
        members' mean reconstruction mapped back through the scaling (``[N, D]`` each)."""
        z = self.standardise(features)
        autoencoder = self.autoencoder
        reconstruction = autoencoder(z)
        errors = reconstruction_errors(autoencoder, z, reconstruction)
        return errors, self.centre + self.scale * reconstruction.mean(dim=0)


# What the graph returns: score [N], feature_errors [N, D], expected [N, D].
Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ScoringGraph(nn.Module):
    """What ``model.onnx`` computes from raw features (NaN = missing):
    ``(score [N], feature_errors [N, D], expected [N, D])``.

    The score says how surprising the row is next to the training data (a typical training row
    scores about 1): 1 plus the mean of the two largest of three calibrated surprises (two
    autoencoder groups' reconstruction errors and a per-feature tail table).

    First, missing values are filled in with each feature's training median (``fill``). Then
    three components give every feature a term: the two autoencoder groups (narrow codes on the
    robust scaling, wider codes on the spread scaling) their calibrated reconstruction errors,
    the tail table its tail surprise (tail.py). Each component is put in units of its own spread
    of typical training rows (calibrate): its surprise, the mean of its terms less an offset, is
    0 for its median training row and 1 for its 80th-percentile one, whatever its units. The
    score is 1 plus the mean surprise of the **two most surprised** components,
    ``feature_errors`` are the mean of those two components' terms (non-negative; the largest
    is the feature to look at first), and ``expected`` is what the most surprised component
    expected each feature to be, in the feature's own units: an autoencoder group's mean
    reconstruction, or the tail table's centre (the training median).

    Why not the sum, and why not the largest: each component is best on some kinds of data and
    weak on others (benchmarks/DETECTION.md); a sum lets the weak ones dilute the one that sees
    the anomaly; the largest, with each component divided by its median row only, let a
    component with a long tail of normal rows (the narrow group on 180 rows; the tail table on
    satellite) outrank what the others saw. In units of each one's spread, the mean of the two
    most surprised needs two to agree, or one to be far out (issue 19: small sets 0.83 -> 0.91,
    benchmarks/HISTORY.md)."""

    def __init__(
        self, groups: list[MemberGroup], tail: TailTerms, fill: np.ndarray | None = None
    ) -> None:
        super().__init__()
        self.groups = nn.ModuleList(groups)
        self.tail = tail
        # Each component's median training row times its spread, and its median row in those
        # units, set by calibrate after training.
        self.register_buffer("component_scale", torch.ones(len(groups) + 1))
        self.register_buffer("component_offset", torch.zeros(len(groups) + 1))
        # What a missing value (NaN) becomes: each feature's training median.
        fill = tail.centre.clone() if fill is None else torch.as_tensor(fill, dtype=torch.float32)
        self.register_buffer("fill", fill)

    def component_errors(self, features: torch.Tensor) -> torch.Tensor:
        """Every component's calibrated terms, ``[N, components, D]``."""
        return torch.stack(self.parts(features), dim=1)

    def parts(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Every component's calibrated terms, ``[N, D]`` each."""
        filled = fill_missing(features, self.fill)
        parts = calibrated_parts(self.groups, self.tail, self.component_scale, filled)
        return [terms for terms, _ in parts]

    def forward(self, features: torch.Tensor) -> Outputs:
        filled = fill_missing(features, self.fill)
        parts = calibrated_parts(self.groups, self.tail, self.component_scale, filled)
        return combine(parts, self.component_offset)


def fill_missing(features: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """NaN cells replaced by ``fill`` (per feature): the graph's first op."""
    return torch.where(torch.isnan(features), fill, features)


def calibrated_parts(
    groups: nn.ModuleList, tail: TailTerms, component_scale: torch.Tensor, features: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each component's terms divided by its component scale, with its expected values: each
    group's (``feature_errors``, mean reconstruction in raw units), then the tail terms with the
    tail's centre. The trained graph and its serving layout (fused.py) both score through this."""
    parts = [group.terms_and_expected(features) for group in groups]
    parts.append((tail(features), tail.centre))
    return [(terms / component_scale[i], expected) for i, (terms, expected) in enumerate(parts)]


def combine(parts: list[tuple[torch.Tensor, torch.Tensor]], offsets: torch.Tensor) -> Outputs:
    """Component (terms ``[N, D]``, expected values) and offsets -> score, terms, expected.

    A component's surprise is its row mean less its offset (0 for the median training row, 1 for
    the COMBINE_QUANTILE one: calibrate). The score is 1 plus the mean surprise of the
    COMBINED_COMPONENTS most surprised components (at least 0), ``feature_errors`` the mean of
    those components' terms (non-negative: each feature's share of what they saw), and
    ``expected`` the most surprised one's expected values. On a tie the first component wins;
    the first must give expected values ``[N, D]``, later ones may broadcast. Chains of
    ``where`` on ``[N, D]``: in ONNX that was cheaper than stacking the components and masking
    the stack."""
    first, expected = parts[0]
    best = first.mean(dim=1) - offsets[0]
    best_terms = first
    second = torch.full_like(best, -torch.inf)
    second_terms = torch.zeros_like(first)
    for index, (part, part_expected) in enumerate(parts[1:], start=1):
        surprise = part.mean(dim=1) - offsets[index]
        above_best = surprise > best
        above_second = surprise > second
        second = torch.where(above_best, best, torch.where(above_second, surprise, second))
        second_terms = torch.where(
            above_best[:, None],
            best_terms,
            torch.where(above_second[:, None], part, second_terms),
        )
        best = torch.where(above_best, surprise, best)
        best_terms = torch.where(above_best[:, None], part, best_terms)
        expected = torch.where(above_best[:, None], part_expected, expected)
    score = (1 + (best + second) / COMBINED_COMPONENTS).clamp_min(0.0)
    return score, (best_terms + second_terms) / COMBINED_COMPONENTS, expected


def default_hidden_dims(input_dim: int) -> list[int]:
    """One hidden layer twice as wide as the input (at least 16, at most ``MAX_DEFAULT_HIDDEN``):
    room to model the non-linear relations between features before squeezing them through the
    bottleneck. The cap keeps wide data affordable: ten members of 548 units each made an epoch
    on arrhythmia (274 features) 4x slower for no better ROC-AUC (64 units gave the same in the
    first tuning round, benchmarks/DETECTION.md)."""
    return [min(max(2 * input_dim, 16), MAX_DEFAULT_HIDDEN)]


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
    fill: np.ndarray | None = None,
) -> ScoringGraph:
    """A fresh (untrained) graph whose scalings and tail table are fitted on ``train_features``
    (no NaN: missing cells already filled with ``fill``, which the graph then applies to its
    input; unset = the training median): ``members`` narrow autoencoders on the robust scaling,
    ``members`` wider ones on the spread scaling."""
    input_dim = train_features.shape[1]
    hidden = default_hidden_dims(input_dim) if hidden_dims is None else hidden_dims
    latent = default_latent_dim(input_dim) if latent_dim is None else latent_dim
    narrow = Autoencoder(input_dim, hidden, latent_widths(latent, members))
    wide = Autoencoder(input_dim, hidden, wide_widths(input_dim, members))
    robust = robust_scaling(train_features)  # the narrow group's and the tail table's
    groups = [MemberGroup(narrow, *robust), MemberGroup(wide, *spread_scaling(train_features))]
    tail = TailTerms.fit(train_features, tuple(part.copy() for part in robust))  # own buffers
    return ScoringGraph(groups, tail, fill)


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


def wide_widths(input_dim: int, members: int) -> list[int]:
    """The spread-scaled group's codes: doubling from 1 (1, 2, 4, 8, 16 for five), each below
    ``input_dim`` so there is a bottleneck at all. The wider codes model local structure (the
    shapes of image-like data, which classes sit where) that the narrow group cannot."""
    return [max(1, min(2**m, WIDE_WIDEST, input_dim - 1)) for m in range(members)]


@torch.no_grad()
def score_rows(graph: ScoringGraph, features: np.ndarray) -> np.ndarray:
    """Scores ``[N]`` of raw feature rows (NaN = missing), by the exported graph's own maths."""
    graph.eval()
    rows = torch.as_tensor(features, dtype=torch.float32)
    return graph_chunks(graph, rows, lambda chunk: graph(chunk)[0]).numpy()

"""The whole scoring graph in as few ONNX ops as it takes: what is exported and served.

At one row ONNX Runtime's price is per op (about 0.3-0.6 us each on this machine, whatever the
op does), and the fused layout (fused.py) still ran about 90 of them after ORT's own
optimisations: each group's standardising, the tail table's 35 element-wise ops, and the
combination's chains of ``where`` on ``[N, D]``. This layout computes the same outputs from the
trained graph's own buffers, built on each group's fused matrices (fused.py):

- every component's centre that equals the first group's is subtracted once (by default all of
  them are the training median); each group's scale and its component scale are folded into its
  matrices, so its terms come out calibrated; on narrow data (JOIN_MAX_ZEROS) the groups are
  joined into one chain of matrices, half the ops;
- the tail table holds, per cell, an intercept and a slope in units of the grid position, so one
  index gives two gathers (down each feature's column) and one multiply-add (no floor, no
  ``index + 1``, no ``beyond`` terms: the two cells past either end carry the extrapolation);
- the combination takes the components' surprises with one Gemm, the two most surprised with
  one TopK, and the outputs as masked matrix products: the selected components' terms and the
  most surprised one's expected values, each a gather of 0/1 rows.

It assumes of the reference maths (graph.py, tail.py), and the export's parity check (ONNX
against the trained ScoringGraph itself) and its fallback to fused.py's layout, which calls the
reference helpers, guard every one of these: the components are the groups (fused.py's
``FusedGroup`` maths) then the tail table (TailTerms.forward), each divided by its
``component_scale``; a surprise is a component's row mean less its offset; the score is
``1 + the mean of the COMBINED_COMPONENTS largest surprises``, at least 0, ties to the first;
``feature_errors`` the mean of those components' terms; ``expected`` the most surprised one's
(a group: its members' mean reconstruction; the tail: its centre).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from datasentinel.trainer.detector.fused import MAX_ADDED_ZEROS, FusedGroup, added_zeros
from datasentinel.trainer.detector.graph import (
    COMBINED_COMPONENTS,
    MemberGroup,
    Outputs,
    ScoringGraph,
    fill_missing,
)
from datasentinel.trainer.detector.tail import GRID, TailTerms, signed_log

# Zero weights the groups joined into one chain may multiply (the repeats' and the fused
# layout's own included). Joined, the autoencoders take half the ops: at one row the price is
# per op, at 1024 rows per weight. Measured at 1 thread, 5 members per group, joined vs
# separate: 4 features (12k zeros) 1 row -17%, 1024 rows -4%; 8 features (21k) -17% and +7%;
# 16 features (74k) -12% and +36%.
JOIN_MAX_ZEROS = 24_000


class NotLean(ValueError):
    """The graph has a part this layout does not know how to lay out (export uses fused.py's)."""


def lean_graph(graph: ScoringGraph) -> nn.Module:
    """``graph``'s outputs in the lean layout; raises NotLean when a group is too wide to fuse
    (its block-diagonal matrices would multiply more than ``MAX_ADDED_ZEROS`` zeros) or the
    graph is not made of the parts this layout knows."""
    if not isinstance(graph.tail, TailTerms) or not graph.groups:
        raise NotLean("the graph's components are not autoencoder groups and a tail table")
    for group in graph.groups:
        if not isinstance(group, MemberGroup) or added_zeros(group.autoencoder) > MAX_ADDED_ZEROS:
            raise NotLean("a group is too wide for fused matrices")
    return LeanGraph(graph)


class LeanGraph(nn.Module):
    """Computes what ``graph`` computes, from its buffers (see the module docstring)."""

    def __init__(self, graph: ScoringGraph) -> None:
        super().__init__()
        scales = graph.component_scale.detach()
        centre = graph.groups[0].centre.detach()
        self.register_buffer("fill", graph.fill.detach().clone())
        self.register_buffer("centre", centre.clone())
        groups = [LeanGroup(group, scales[i], centre) for i, group in enumerate(graph.groups)]
        joined = JoinedGroups(groups) if joins(groups) else None
        self.groups = nn.ModuleList(groups if joined is None else [joined])
        self.tail = LeanTail(graph.tail, scales[-1], centre)
        signs = [1.0] * len(graph.groups) + [-1.0]  # the tail gives features - expected
        self.combination = Combination(graph.component_offset.detach(), len(centre), signs)

    def forward(self, features: torch.Tensor) -> Outputs:
        filled = fill_missing(features, self.fill)
        centred = filled - self.centre
        parts = [group(centred) for group in self.groups]
        tail_terms, tail_delta = self.tail(filled, centred)
        terms = torch.cat([*(t for t, _ in parts), tail_terms], dim=1)
        deltas = torch.cat([*(d for _, d in parts), tail_delta], dim=1)
        return self.combination(filled, terms, deltas)


class LeanGroup(nn.Module):
    """One autoencoder group's calibrated terms and ``expected - features`` from centred rows:
    FusedGroup's matrices with the scaling's ``1 / scale`` and the component scale folded in."""

    def __init__(self, group: MemberGroup, component_scale: torch.Tensor, centre: torch.Tensor):
        super().__init__()
        fused = FusedGroup(group)
        inverse = 1.0 / fused.scale[:, None]
        # Another centre than the shared one: subtract the difference too (not by default).
        shift = None if torch.equal(fused.centre, centre) else (fused.centre - centre)
        self.register_buffer("shift", shift)
        weights = [w.detach().clone() for w in fused.hidden]
        weights[0] = weights[0] * inverse
        for index, (w, b) in enumerate(zip(weights, fused.hidden_bias, strict=True)):
            self.register_buffer(f"weight_{index}", w)
            self.register_buffer(f"bias_{index}", b.detach().clone())
        self.layers = len(weights)
        self.code_layer = fused.code_layer
        self.register_buffer("repeat", fused.repeat * inverse)
        self.register_buffer("last_bias", fused.last_bias.clone())
        self.register_buffer("last_weight", fused.last_weight.clone())
        self.register_buffer("member_mean", fused.member_mean / component_scale)
        self.register_buffer("to_expected", fused.to_expected.clone())

    def forward(self, centred: torch.Tensor):
        return _group_outputs(self, centred if self.shift is None else centred - self.shift)

    def matrices(self) -> list[torch.Tensor]:
        return [getattr(self, f"weight_{layer}") for layer in range(self.layers)] + [
            self.repeat,
            self.last_weight,
        ]


def _group_outputs(group: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FusedGroup's maths on a LeanGroup's or JoinedGroups' buffers: calibrated terms and
    ``expected - features``."""
    h = z
    for layer in range(group.layers):
        h = torch.addmm(getattr(group, f"bias_{layer}"), h, getattr(group, f"weight_{layer}"))
        if layer != group.code_layer:
            h = torch.relu(h)
    difference = torch.addmm(torch.addmm(group.last_bias, z, group.repeat), h, group.last_weight)
    terms = torch.log1p(difference * difference) @ group.member_mean
    return terms, difference @ group.to_expected


def joins(groups: list[LeanGroup]) -> bool:
    """Whether the groups are joined into one chain: same shape of network, same centre, and at
    most JOIN_MAX_ZEROS zero weights in the joined matrices."""
    first = groups[0]
    alike = all(
        g.layers == first.layers and g.code_layer == first.code_layer and g.shift is None
        for g in groups
    )
    if len(groups) < 2 or not alike:
        return False
    joined = sum(m.numel() for m in JoinedGroups(groups).matrices())
    nonzero = sum(int((m != 0).sum()) for g in groups for m in g.matrices())
    return joined - nonzero <= JOIN_MAX_ZEROS


class JoinedGroups(nn.Module):
    """Several LeanGroups as one: first layers and input repeats side by side, later layers
    block-diagonal; terms and ``expected - features`` of every group side by side."""

    def __init__(self, groups: list[LeanGroup]) -> None:
        super().__init__()
        self.layers, self.code_layer = groups[0].layers, groups[0].code_layer
        for layer in range(self.layers):
            weights = [getattr(g, f"weight_{layer}") for g in groups]
            joined = torch.cat(weights, dim=1) if layer == 0 else torch.block_diag(*weights)
            self.register_buffer(f"weight_{layer}", joined)
            self.register_buffer(f"bias_{layer}", _cat(groups, f"bias_{layer}"))
        self.register_buffer("repeat", torch.cat([g.repeat for g in groups], dim=1))
        self.register_buffer("last_bias", _cat(groups, "last_bias"))
        for name in ("last_weight", "member_mean", "to_expected"):
            self.register_buffer(name, torch.block_diag(*(getattr(g, name) for g in groups)))

    def forward(self, centred: torch.Tensor):
        return _group_outputs(self, centred)

    matrices = LeanGroup.matrices


def _cat(groups: list[LeanGroup], name: str) -> torch.Tensor:
    return torch.cat([getattr(g, name) for g in groups])


class LeanTail(nn.Module):
    """TailTerms divided by its component scale, as ``intercept + slope * position`` per cell,
    with ``position`` one more than TailTerms' grid position so that cell 0 (left of the grid)
    and cell ``GRID`` (right of it) carry TailTerms' one nat per signed-log unit beyond the
    training range. Its expected values are its centre: it returns ``features - centre``
    (negated by the combination, so no op is spent on it)."""

    def __init__(self, tail: TailTerms, component_scale: torch.Tensor, centre: torch.Tensor):
        super().__init__()
        # Built in float64: each cell's value at its left edge and its slope per grid step.
        table = tail.table.detach().double().reshape(-1, GRID)
        step = tail.step.detach().double()[:, None]
        left = torch.cat([table[:, :1] + step, table[:, :-1], table[:, -1:]], dim=1)
        slope = torch.cat([-step, table.diff(dim=1), step], dim=1)
        cells = torch.arange(GRID + 1, dtype=torch.float64)
        intercept = (left - slope * cells) / component_scale.double()
        shift = None if torch.equal(tail.centre, centre) else (tail.centre - centre)
        self.register_buffer("shift", shift)
        self.register_buffer("scale", tail.scale.detach().clone())
        self.register_buffer("lower", (tail.lower.double() - tail.step.double()).float())
        self.register_buffer("step", tail.step.detach().clone())
        # [cells, D]: a GatherElements down each feature's column needs no per-feature offset
        # (at 1024 rows x 8 features 53 us for both lookups, against 307 us for Gather from the
        # flattened table with offsets added; one op fewer).
        self.register_buffer("intercept", intercept.float().T.contiguous())
        self.register_buffer("slope", (slope / component_scale.double()).float().T.contiguous())

    def forward(self, filled: torch.Tensor, centred: torch.Tensor):
        from_centre = centred if self.shift is None else centred - self.shift
        position = (signed_log(from_centre / self.scale) - self.lower) / self.step
        # Truncating a non-negative number is its floor: the cell.
        index = position.clamp(0, GRID).int()
        intercept = torch.gather(self.intercept, 0, index)
        terms = intercept + torch.gather(self.slope, 0, index) * position
        return terms, from_centre


class Combination(nn.Module):
    """Component terms ``[N, C * D]`` and differences ``[N, C * D]`` (``expected - features``
    times ``signs``, one per component) -> score, feature_errors, expected."""

    def __init__(self, offsets: torch.Tensor, dim: int, signs: list[float]) -> None:
        super().__init__()
        components = len(offsets)
        self.chosen = min(COMBINED_COMPONENTS, components)
        eye = torch.eye(components)
        # Row means less the offsets, plus the score's 1 (so the top values' mean is the score).
        self.register_buffer("row_mean", torch.repeat_interleave(eye, dim, dim=0) / dim)
        self.register_buffer("surprise_bias", 1.0 - offsets.clone())
        # Every ordered choice of components (i0, i1, ...) numbered i0 C^(k-1) + i1 C^(k-2) + ...
        # (one integer MatMul of TopK's indices), with its column masks: the mean over the
        # chosen ones for feature_errors, the first (the most surprised) alone for expected.
        # Two row gathers; a mean over the chosen axis of [N, chosen, C * D] masks instead cost
        # 160 us at 1024 rows (ORT's ReduceMean over a middle axis), and the chosen rows of an
        # identity times two mask matrices one op more.
        spread = torch.repeat_interleave(eye, dim, dim=1)  # [C, C * D]
        choices = list(itertools.product(range(components), repeat=self.chosen))
        self.register_buffer("mean_masks", torch.stack([spread[list(c)].mean(0) for c in choices]))
        self.register_buffer("first_masks", torch.stack([spread[c[0]] for c in choices]))
        powers = [components ** (self.chosen - 1 - j) for j in range(self.chosen)]
        self.register_buffer("choice_number", torch.tensor(powers))
        # The sum of the C blocks per feature, and the same with each block's sign.
        blocks = torch.eye(dim).repeat(components, 1)
        self.register_buffer("sum_blocks", blocks)
        self.register_buffer(
            "signed_blocks", blocks * torch.tensor(signs).repeat_interleave(dim)[:, None]
        )

    def forward(self, filled: torch.Tensor, terms: torch.Tensor, deltas: torch.Tensor) -> Outputs:
        surprise = torch.addmm(self.surprise_bias, terms, self.row_mean)
        top, chosen = torch.topk(surprise, self.chosen, dim=1)
        score = top.mean(dim=1).clamp_min(0.0)
        choice = chosen @ self.choice_number
        feature_errors = (terms * self.mean_masks[choice]) @ self.sum_blocks
        expected = torch.addmm(filled, deltas * self.first_masks[choice], self.signed_blocks)
        return score, feature_errors, expected

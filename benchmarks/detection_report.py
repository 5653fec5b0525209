"""The detection benchmark's report: markdown tables and verdicts built from per-seed runs.

Pure bookkeeping, no training: ``benchmarks/detection.py`` produces the runs, this module turns
them into the per-dataset tables, the detector comparison, DataSentinel's seed spread and
threshold check, and the acceptance verdict of issue 11. A ``--json`` file of that script holds
the same runs, so ``render(load_runs(path))`` rebuilds every table without refitting anything.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

DATASENTINEL = "DataSentinel"
# DataSentinel of an earlier revision (detection.py --before REV): shown beside this one for
# fit time and ROC-AUC, left out of the ranks and the acceptance verdict.
BEFORE_PREFIX = "DataSentinel@"
# The acceptance bar of issue 11 names these four; COPOD and LOF are optional extras.
ACCEPTANCE_BASELINES = ("IForest", "ECOD", "HBOS", "KNN")
ACCEPTANCE_MARGIN = 0.03
CHANCE_ROC_AUC = 0.6
# The flagged share may drift from the configured one by this factor either way.
SHARE_TOLERANCE = 1.5
# Below this many rows a 2% share is a handful of test rows, too few to judge the threshold.
MIN_ROWS_FOR_SHARE_CHECK = 300
METRICS = ["roc_auc", "pr_auc", "precision", "recall", "f1", "fit_s"]

Means = dict[str, dict[str, float]]  # dataset -> detector -> mean ROC-AUC


@dataclass(frozen=True)
class Run:
    """One detector on one seed's split of one dataset: ranking quality, its flags, fit time."""

    dataset: str
    detector: str
    seed: int
    rows: int  # rows of the whole dataset, before the split
    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    fit_s: float
    flagged_share: float  # share of the test rows the detector flags
    expected_share: float | None = None  # 1 - threshold_quantile; DataSentinel only


def save_runs(runs: Iterable[Run], path: Path, settings: dict[str, object]) -> None:
    payload = {"settings": settings, "runs": [asdict(run) for run in runs]}
    path.write_text(json.dumps(payload, indent=1) + "\n")


def load_runs(path: Path) -> list[Run]:
    return [Run(**record) for record in json.loads(path.read_text())["runs"]]


def group(runs: Iterable[Run]) -> dict[str, dict[str, list[Run]]]:
    """dataset -> detector -> runs, both in first-seen order."""
    grouped: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        grouped.setdefault(run.dataset, {}).setdefault(run.detector, []).append(run)
    return grouped


def mean_of(runs: list[Run], metric: str = "roc_auc") -> float:
    return statistics.fmean(getattr(run, metric) for run in runs)


def mean_roc_aucs(grouped: dict[str, dict[str, list[Run]]]) -> Means:
    return {
        dataset: {detector: mean_of(runs) for detector, runs in by_detector.items()}
        for dataset, by_detector in grouped.items()
    }


def ranks(scores: dict[str, float]) -> dict[str, float]:
    """1 = highest score; tied detectors share the mean of the ranks they span."""
    return {name: rank_among(score, list(scores.values())) for name, score in scores.items()}


def rank_among(score: float, scores: list[float]) -> float:
    above = sum(other > score for other in scores)
    tied_others = sum(other == score for other in scores) - 1
    return 1 + above + tied_others / 2


def mean_ranks(means: Means) -> dict[str, float]:
    per_dataset = [ranks(row) for row in means.values()]
    detectors = {name: None for row in per_dataset for name in row}
    return {
        name: statistics.fmean(row[name] for row in per_dataset if name in row)
        for name in detectors
    }


def best_baseline(row: dict[str, float], baselines: Iterable[str] | None = None) -> str | None:
    """The highest-scoring baseline (every detector but DataSentinel unless ``baselines``)."""
    allowed = set(baselines) if baselines is not None else set(row) - {DATASENTINEL}
    candidates = [name for name in row if name in allowed and name != DATASENTINEL]
    return max(candidates, key=row.__getitem__, default=None)


def gap_to_best_baseline(row: dict[str, float]) -> float | None:
    """DataSentinel's mean ROC-AUC minus the best baseline's; negative when it is behind."""
    best = best_baseline(row)
    if DATASENTINEL not in row or best is None:
        return None
    return row[DATASENTINEL] - row[best]


def largest_gap_below_best(means: Means) -> dict[str, float]:
    gaps: dict[str, float] = {}
    for row in means.values():
        best = max(row.values())
        for name, score in row.items():
            gaps[name] = max(gaps.get(name, 0.0), best - score)
    return gaps


def worst_dataset(means: Means) -> dict[str, tuple[str, float]]:
    """Per detector, the dataset where its mean ROC-AUC is lowest, with that mean."""
    worst: dict[str, tuple[str, float]] = {}
    for dataset, row in means.items():
        for name, score in row.items():
            if name not in worst or score < worst[name][1]:
                worst[name] = (dataset, score)
    return worst


def chance_seeds(runs: list[Run]) -> list[int]:
    return [run.seed for run in runs if run.roc_auc < CHANCE_ROC_AUC]


def configured_share(runs: list[Run]) -> float:
    return statistics.fmean(run.expected_share for run in runs if run.expected_share is not None)


def share_ratio(runs: list[Run]) -> float:
    """Mean flagged share over the seeds, as a multiple of the configured share."""
    return mean_of(runs, "flagged_share") / configured_share(runs)


def share_off_target(ratio: float, rows: int) -> bool:
    judged = rows >= MIN_ROWS_FOR_SHARE_CHECK
    return judged and not 1 / SHARE_TOLERANCE <= ratio <= SHARE_TOLERANCE


def lagging_datasets(means: Means) -> list[tuple[str, str, float]]:
    """(dataset, best acceptance baseline, gap) where DataSentinel is over the margin behind."""
    lagging = []
    for dataset, row in means.items():
        best = best_baseline(row, ACCEPTANCE_BASELINES)
        if DATASENTINEL in row and best is not None:
            gap = row[DATASENTINEL] - row[best]
            if gap < -ACCEPTANCE_MARGIN:
                lagging.append((dataset, best, gap))
    return lagging


def overall_means(means: Means) -> dict[str, float]:
    """Per detector, its mean ROC-AUC averaged over the datasets."""
    detectors = {name: None for row in means.values() for name in row}
    return {
        name: statistics.fmean(row[name] for row in means.values() if name in row)
        for name in detectors
    }


# Markdown.


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {spread:.3f}"


def bold_if(text: str, condition: bool) -> str:
    return f"**{text}**" if condition else text


def markdown_row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def header(cells: list[str]) -> list[str]:
    return [markdown_row(cells), markdown_row(["---"] * len(cells))]


def detail_table(dataset: str, by_detector: dict[str, list[Run]]) -> list[str]:
    lines = header(
        ["dataset", "detector", "ROC-AUC", "PR-AUC", "precision", "recall", "F1", "fit s"]
    )
    for detector, runs in by_detector.items():
        cells = [mean_std([getattr(run, metric) for run in runs]) for metric in METRICS]
        lines.append(markdown_row([dataset, detector, *cells]))
    return lines


def summary_table(grouped: dict[str, dict[str, list[Run]]]) -> list[str]:
    means = mean_roc_aucs(grouped)
    detectors = list(overall_means(means))
    # The gap column (and the footer's blank cells under it) only when DataSentinel ran.
    gap_column = ["DataSentinel − best baseline"] if DATASENTINEL in detectors else []
    lines = header(["dataset", *detectors, *gap_column])
    for dataset, by_detector in grouped.items():
        best = max(means[dataset].values())
        cells = [summary_cell(by_detector.get(name), best) for name in detectors]
        gap = gap_to_best_baseline(means[dataset])
        gap_cell = ["" if gap is None else f"{gap:+.3f}"] if gap_column else []
        lines.append(markdown_row([dataset, *cells, *gap_cell]))
    return lines + summary_footer(means, detectors, [""] * len(gap_column))


def summary_cell(runs: list[Run] | None, best: float) -> str:
    if not runs:
        return ""
    return bold_if(mean_std([run.roc_auc for run in runs]), mean_of(runs) == best)


def summary_footer(means: Means, detectors: list[str], blank: list[str]) -> list[str]:
    overall = overall_means(means)
    rank = mean_ranks(means)
    worst = worst_dataset(means)
    gaps = largest_gap_below_best(means)
    rows = {
        "mean ROC-AUC": bold_best(overall, detectors, max(overall.values()), "{:.3f}"),
        "mean rank": bold_best(rank, detectors, min(rank.values()), "{:.2f}"),
        "worst dataset": [f"{worst[name][1]:.3f} ({worst[name][0]})" for name in detectors],
        "largest gap below the best": [f"{gaps[name]:.3f}" for name in detectors],
    }
    return [markdown_row([label, *cells, *blank]) for label, cells in rows.items()]


def bold_best(values: dict[str, float], order: list[str], best: float, fmt: str) -> list[str]:
    return [bold_if(fmt.format(values[name]), values[name] == best) for name in order]


def seed_spread_table(grouped: dict[str, dict[str, list[Run]]]) -> list[str]:
    lines = header(
        ["dataset", "min ROC-AUC", "max ROC-AUC", f"seeds at chance (< {CHANCE_ROC_AUC})"]
    )
    for dataset, by_detector in grouped.items():
        runs = by_detector[DATASENTINEL]
        scores = [run.roc_auc for run in runs]
        at_chance = ", ".join(f"seed {seed}" for seed in chance_seeds(runs)) or "none"
        lines.append(markdown_row([dataset, f"{min(scores):.3f}", f"{max(scores):.3f}", at_chance]))
    return lines


def threshold_table(grouped: dict[str, dict[str, list[Run]]]) -> list[str]:
    lines = header(["dataset", "rows", "flagged share", "configured share", "ratio", "check"])
    for dataset, by_detector in grouped.items():
        runs = by_detector[DATASENTINEL]
        ratio = share_ratio(runs)
        shares = [f"{mean_of(runs, 'flagged_share'):.4f}", f"{configured_share(runs):.4f}"]
        check = share_check(ratio, runs[0].rows)
        lines.append(markdown_row([dataset, runs[0].rows, *shares, f"{ratio:.2f}", check]))
    return lines


def share_check(ratio: float, rows: int) -> str:
    if rows < MIN_ROWS_FOR_SHARE_CHECK:
        return f"not judged (< {MIN_ROWS_FOR_SHARE_CHECK} rows)"
    if share_off_target(ratio, rows):
        return f"**outside [{1 / SHARE_TOLERANCE:.2f}, {SHARE_TOLERANCE:g}]**"
    return "ok"


def verdict_lines(means: Means) -> list[str]:
    present = [name for name in ACCEPTANCE_BASELINES if any(name in row for row in means.values())]
    if not present:
        return ["Acceptance: not judged, none of " + "/".join(ACCEPTANCE_BASELINES) + " ran."]
    lagging = [
        f"{dataset} ({gap:+.3f} vs {best})" for dataset, best, gap in lagging_datasets(means)
    ]
    return [
        f"Acceptance: datasets where DataSentinel's mean ROC-AUC is more than "
        f"{ACCEPTANCE_MARGIN} below the best of {'/'.join(present)}: "
        + (", ".join(lagging) or "none"),
        "Acceptance: " + rank_verdict(mean_ranks(means)),
    ]


def rank_verdict(rank: dict[str, float]) -> str:
    ours, first = rank[DATASENTINEL], min(rank.values())
    leaders = ", ".join(
        name for name, value in rank.items() if value == first and name != DATASENTINEL
    )
    if ours > first:
        return f"DataSentinel's mean rank is not first: {ours:.2f}, {leaders} at {first:.2f}"
    tied = f" (tied with {leaders})" if leaders else ""
    return f"DataSentinel's mean rank is first: {ours:.2f}{tied}"


def render(runs: Iterable[Run]) -> str:
    """Every table: the per-dataset details, then the comparison."""
    grouped = group(runs)
    details = [detail_table(dataset, by_detector) for dataset, by_detector in grouped.items()]
    return "\n\n".join(["\n".join(lines) for lines in details] + [comparison(grouped)])


def fit_time_table(grouped: dict[str, dict[str, list[Run]]]) -> list[str]:
    """Mean fit seconds per dataset and detector, then DataSentinel's (and any earlier
    revision's) median and slowest dataset."""
    detectors = list({name: None for row in grouped.values() for name in row})
    lines = header(["dataset", "rows", *[f"{name} s" for name in detectors]])
    for dataset, by_detector in grouped.items():
        rows = next(iter(by_detector.values()))[0].rows
        cells = [fit_cell(by_detector.get(name)) for name in detectors]
        lines.append(markdown_row([dataset, rows, *cells]))
    for label, pick in (("median", statistics.median), ("slowest", max)):
        cells = [
            f"{pick(per_set):.2f}" if (per_set := fit_means(grouped, name)) else ""
            for name in detectors
        ]
        lines.append(markdown_row([label, "", *cells]))
    return lines


def fit_means(grouped: dict[str, dict[str, list[Run]]], detector: str) -> list[float]:
    return [mean_of(row[detector], "fit_s") for row in grouped.values() if detector in row]


def fit_cell(runs: list[Run] | None) -> str:
    return "" if not runs else f"{mean_of(runs, 'fit_s'):.2f}"


def before_after_table(grouped: dict[str, dict[str, list[Run]]], before: str) -> list[str]:
    lines = header(["dataset", f"{before} ROC-AUC", "DataSentinel ROC-AUC", "change"])
    for dataset, row in grouped.items():
        if before in row and DATASENTINEL in row:
            old, new = mean_of(row[before]), mean_of(row[DATASENTINEL])
            cells = [
                mean_std([r.roc_auc for r in row[before]]),
                mean_std([r.roc_auc for r in row[DATASENTINEL]]),
            ]
            lines.append(markdown_row([dataset, *cells, f"{new - old:+.3f}"]))
    return lines


def comparison(grouped: dict[str, dict[str, list[Run]]]) -> str:
    """The detector comparison, DataSentinel's seed spread and threshold check, the verdict,
    fit times (and an earlier revision's, beside this one's)."""
    everything = grouped
    grouped = {
        dataset: {name: runs for name, runs in row.items() if not name.startswith(BEFORE_PREFIX)}
        for dataset, row in everything.items()
    }
    befores = {
        name for row in everything.values() for name in row if name.startswith(BEFORE_PREFIX)
    }
    sections = [["### Mean ROC-AUC over the seeds (best in bold)", "", *summary_table(grouped)]]
    ours = {dataset: row for dataset, row in grouped.items() if DATASENTINEL in row}
    if ours:
        sections.append(["### DataSentinel's ROC-AUC over the seeds", "", *seed_spread_table(ours)])
        sections.append(
            [
                "### DataSentinel's flagged share vs 1 - threshold_quantile",
                "",
                *threshold_table(ours),
            ]
        )
        sections.append(verdict_lines(mean_roc_aucs(grouped)))
    sections.append(["### Mean fit seconds", "", *fit_time_table(everything)])
    for before in sorted(befores):
        sections.append(
            [f"### {before} vs this revision", "", *before_after_table(everything, before)]
        )
    return "\n\n".join("\n".join(lines) for lines in sections)

"""What a person reads: per-row lines while streaming, a closing summary, and the --output CSV."""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from datasentinel.producer.outputs import label_metrics as metrics
from datasentinel.producer.settings import Show
from datasentinel.producer.stream.ledger import Outcome, RowState

if TYPE_CHECKING:
    from datasentinel.producer.app import RunResult

ANOMALY_MARK = "!! ANOMALY"
FAILED_MARK = "!! FAILED"
BASELINE_ROWS = 5  # rows printed first in --show anomalies, so flagged scores have a reference
MAX_FAILURE_LINES = 10
NOT_SENT = "not sent: "  # how the reason of a row rejected before streaming starts
MIN_RATE_SECONDS = 1.0  # shorter runs get their vector count and duration, not a rate

_RED, _YELLOW, _DIM, _RESET = "\033[1;31m", "\033[1;33m", "\033[2m", "\033[0m"


def use_color(out: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


class RowPrinter:
    """Called with each stream outcome (from the reader thread); writes the lines ``show`` asks
    for: every row, or a few baseline rows then flagged rows; failures in both modes."""

    def __init__(
        self, out: TextIO, show: Show, labels: np.ndarray | None, n_rows: int, color: bool
    ) -> None:
        self._out = out
        self._show = show
        self._labels = labels
        self._id_width = len(str(max(n_rows - 1, 0)))
        self._color = color
        self._baseline_left = BASELINE_ROWS if show == Show.anomalies else 0

    def __call__(self, outcome: Outcome) -> None:
        if self._show == Show.none:
            return
        lines = [self._row_line(outcome, i) for i in self._rows_to_show(outcome)]
        if len(outcome.failed_ids):
            lines.append(self._failure_line(outcome))
        if lines:
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()

    def _rows_to_show(self, outcome: Outcome) -> list[int]:
        """Positions in the outcome's answered rows to print, in answer order."""
        n = len(outcome.ok_ids)
        if self._show == Show.all:
            return list(range(n))
        baseline = list(range(min(self._baseline_left, n)))
        self._baseline_left -= len(baseline)
        flagged = np.flatnonzero(outcome.is_anomaly).tolist()
        return sorted(set(baseline) | set(flagged))

    def _row_line(self, outcome: Outcome, i: int) -> str:
        row_id = int(outcome.ok_ids[i])
        flagged = bool(outcome.is_anomaly[i])
        label = self._label(row_id)
        verdict = ANOMALY_MARK if flagged else "ok"
        severity = np.nan if outcome.severity is None else float(outcome.severity[i])
        line = (
            f"id {row_id:>{self._id_width}}  score {_number(outcome.scores[i])}  "
            f"severity {_severity(severity)}  threshold {_number(outcome.threshold)}  "
            f"{verdict:<10}"
        )
        if label is not None:
            line += f"  label {label}"
            if label and not flagged:
                line += " (missed)"
        explanations = outcome.explanations
        if explanations is not None:
            top = explanations.top_feature(i) if flagged else None
            if top is not None:
                name, share, value, expected = top
                line += (
                    f"  top {name} = {_value(value)} (expected {_value(expected)}, "
                    f"{share:.0%} of the score)"
                )
            missing = [explanations.names[j] for j in explanations.missing[i]]
            if missing:
                line += f"  missing {', '.join(missing)}"
        return self._paint(line.rstrip(), _RED if flagged else None)

    def rejected(self, ids: np.ndarray, reasons: tuple[str, ...] | list[str]) -> None:
        """Rows not sent (missing or infinite values): the first few, then how many more."""
        if self._show == Show.none or not len(ids):
            return
        lines = [
            self._paint(f"{FAILED_MARK}  id {row}: {reason}", _YELLOW)
            for row, reason in zip(ids[:MAX_FAILURE_LINES].tolist(), reasons, strict=False)
        ]
        if len(ids) > MAX_FAILURE_LINES:
            lines.append(f"... and {len(ids) - MAX_FAILURE_LINES} more rows not sent")
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()

    def _failure_line(self, outcome: Outcome) -> str:
        where = f" [request {outcome.message.request_id}]" if outcome.message else ""
        line = f"{FAILED_MARK}  {describe_ids(outcome.failed_ids)}: {outcome.reason}{where}"
        return self._paint(line, _YELLOW)

    def _label(self, row_id: int) -> int | None:
        if self._labels is None or row_id >= len(self._labels):
            return None
        return int(self._labels[row_id])

    def _paint(self, text: str, color: str | None) -> str:
        return f"{color}{text}{_RESET}" if color and self._color else text


def _severity(x: float) -> str:
    """0..1 with 4 decimals; '-' for a model without severity."""
    return "     -" if np.isnan(x) else f"{x:.4f}"


def _value(x: float) -> str:
    """A feature value as a person reads it: float32's shortest form ('81.2', not 81.19999)."""
    return "missing" if np.isnan(x) else str(np.float32(x))


def _number(x: float) -> str:
    """Fixed point where it reads well (scores are usually 0.001..1e5), scientific elsewhere."""
    fixed = 1e-3 <= abs(x) < 1e6 or x == 0
    return f"{x:>11.4f}" if fixed else f"{x:>11.3e}"


def describe_ids(ids: np.ndarray) -> str:
    """'ids 320..383 (64 rows)' for a run of consecutive ids, else the first few."""
    n = len(ids)
    if n == 1:
        return f"id {int(ids[0])}"
    values = np.asarray(ids, dtype=np.int64)
    if n and np.all(np.diff(values) == 1):
        return f"ids {values[0]}..{values[-1]} ({n} rows)"
    shown = ", ".join(str(v) for v in values[:5])
    more = ", ..." if n > 5 else ""
    return f"ids {shown}{more} ({n} rows)"


@dataclass(frozen=True)
class LabelMetrics:
    """How the flags compare with known labels, over the rows that got a result."""

    rows: int
    positives: int
    precision: float
    recall: float
    roc_auc: float | None  # None when the rows hold only one class


def label_metrics(labels: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> LabelMetrics:
    return LabelMetrics(
        rows=len(labels),
        positives=int(np.count_nonzero(labels)),
        precision=metrics.precision(labels, flags),
        recall=metrics.recall(labels, flags),
        roc_auc=metrics.roc_auc(labels, scores),
    )


def format_summary(result: RunResult) -> str:
    r = result
    models = _by_model(r)
    if len(models) > 1:
        engine = f"{r.target}, models {', '.join(m.version for m in models)} (per model below)"
    elif models:
        engine = f"{r.target}, model {models[0].version} (threshold {models[0].thresholds})"
    else:
        engine = f"{r.target}, model {r.model_version or '?'} (threshold {r.threshold:.4g})"
    fields = [
        ("engine", engine),
        ("input", f"{r.source}, {r.batch_size} vectors per message"),
        *_input_fields(r),
        ("sent", f"{r.vectors_sent} of {r.n_rows} vectors in {r.messages_sent} messages"),
        ("answered", f"{r.answered} ({_percent(r.answered, r.n_rows)})"),
        ("failed", f"{r.failed}"),
        *_recovery_fields(r),
        ("flagged", f"{r.flagged} of {r.answered} answered ({_percent(r.flagged, r.answered)})"),
    ]
    if len(models) > 1:
        fields.append(("by model", "(a reload during the run)"))
        fields += [
            (
                f"  {m.version}",
                f"{m.answered} answered, {m.flagged} flagged "
                f"({_percent(m.flagged, m.answered)}), threshold {m.thresholds}",
            )
            for m in models
        ]
    fields.append(("throughput", _throughput(r)))
    if len(r.latencies_ms):
        p50, p99 = np.percentile(r.latencies_ms, [50, 99])
        fields.append(("latency", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms per message"))
    if r.metrics is not None:
        m = r.metrics
        auc = "n/a (one class only)" if m.roc_auc is None else f"{m.roc_auc:.3f}"
        fields.append(
            (
                "vs labels",
                f"precision {m.precision:.3f}, recall {m.recall:.3f}, ROC-AUC {auc} "
                f"({m.positives} labelled anomalies in {m.rows} answered rows)",
            )
        )
    lines = ["", "== summary " + "=" * 60]
    lines += [_field(name, value) for name, value in fields]
    lines += _failure_lines(r)
    lines.append(_field("result", _verdict(r)))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ModelRows:
    """What one model version did in a run."""

    version: str
    answered: int
    flagged: int
    thresholds: str  # the threshold(s) its answers used, e.g. '0.5'


def _by_model(r: RunResult) -> list[ModelRows]:
    """Per model version that answered rows, in the order they first answered."""
    ledger = r.ledger
    index, used = ledger.model_index, ledger.threshold_used
    ok = ledger.state == RowState.OK
    models = []
    for i, version in enumerate(ledger.model_names):
        rows = ok & (index == i)
        answered = int(np.count_nonzero(rows))
        if not answered:
            continue
        flagged = int(np.count_nonzero(rows & ledger.is_anomaly))
        values = np.unique(used[rows])
        thresholds = ", ".join(f"{x:.4g}" for x in values.tolist())
        models.append(ModelRows(version, answered, flagged, thresholds or "?"))
    return models


def _input_fields(r: RunResult) -> list[tuple[str, str]]:
    """Rows not sent and missing values sent: shown only when there were any."""
    fields = []
    if r.rejected:
        fields.append(
            (
                "not sent",
                f"{r.rejected} rows, failed: a feature value missing (and the model does not "
                "fill them in) or infinite; each row's reason is in --output's error column",
            )
        )
        fields += [("", f"  {note}") for note in r.rejected_summary]
    if r.missing_cells:
        fields.append(
            ("missing", f"{r.missing_cells} empty values sent as NaN, filled in by the model")
        )
    return fields


def _throughput(r: RunResult) -> str:
    """A rate only over a run long enough for one: the default 2,000 vectors take 0.02-0.04 s,
    where start-up and scheduling noise dominate (identical runs read 53k to 113k vectors/s)."""
    took = f"{r.answered:,} vectors in {r.elapsed_s:.3g} s"
    if r.elapsed_s < MIN_RATE_SECONDS:
        return f"{took} (too short for a rate: raise --count for a run of a second or more)"
    return f"{r.vectors_per_s:,.0f} vectors/s, {r.messages_per_s:,.1f} messages/s ({took})"


def _recovery_fields(r: RunResult) -> list[tuple[str, str]]:
    """Reconnects, resends and repeated answers: shown only when there were any."""
    ledger = r.ledger
    fields = []
    if r.reconnects or r.stream_errors:
        waits = f", longest {max(r.reconnect_seconds):.2f} s" if r.reconnect_seconds else ""
        fields.append(
            (
                "reconnects",
                f"{r.reconnects} after {len(r.stream_errors)} broken stream(s){waits}; "
                f"resent {ledger.resent_messages} messages ({ledger.resent_vectors} vectors)",
            )
        )
    if ledger.retried_answers:
        fields.append(("retried", f"{ledger.retried_answers} transient error answers, resent"))
    if ledger.duplicate_answers:
        conflicting = ledger.conflicting_ids and f", {ledger.conflicting_ids} by another model"
        fields.append(
            (
                "duplicates",
                f"{ledger.duplicate_answers} answers for rows already answered (counted once"
                f"{conflicting or ''})",
            )
        )
    return fields


def _field(name: str, value: str) -> str:
    return f"{name:<12} {value}"


def _failure_lines(r: RunResult) -> list[str]:
    """Rows failed per reason; the rows not sent have their own summary lines (``not sent``)."""
    failures = [(reason, n) for reason, n in r.failures if not reason.startswith(NOT_SENT)]
    lines = [f"  {n} rows: {reason}" for reason, n in failures[:MAX_FAILURE_LINES]]
    if len(failures) > MAX_FAILURE_LINES:
        lines.append(f"  ... and {len(failures) - MAX_FAILURE_LINES} more reasons")
    if lines:
        lines.insert(0, _field("failures", "(rows: reason)"))
    if r.violations:
        lines.append(_field("protocol", f"{r.n_violations} violation(s) by the engine:"))
        lines += [f"  {note}" for note in r.violations]
        if r.n_violations > len(r.violations):
            lines.append(f"  ... and {r.n_violations - len(r.violations)} more")
    return lines


def _verdict(r: RunResult) -> str:
    code = f"(exit code {r.exit_code})"
    if r.exit_code == 0:
        return f"OK: every vector answered {code}"
    if r.interrupted:
        return f"INTERRUPTED: {r.answered} of {r.n_rows} answered {code}"
    problems = []
    if r.failed:
        problems.append(f"{r.failed} of {r.n_rows} vectors failed or unanswered")
    if r.n_violations:
        problems.append(f"{r.n_violations} protocol violation(s)")
    return f"FAILED: {'; '.join(problems)} {code}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "n/a"


# The result columns of --output, after the id and the key columns.
RESULT_COLUMNS = [
    "score",
    "is_anomaly",
    "severity",
    "threshold",
    "model_version",
    "top_features",
    "top_values",
    "top_expected",
    "missing_features",
]


def output_header(result: RunResult) -> list[str]:
    """The --output columns: id, the key columns as given, the results, label, error."""
    return (
        ["id", *_key_names(result), *RESULT_COLUMNS]
        + (["label"] if result.labels is not None else [])
        + ["error"]
    )


def write_csv(target: Path | TextIO, result: RunResult) -> None:
    """One row per input row, in input order: ``output_header``'s columns. Rows without a result
    have empty result cells and their reason under ``error``. To a path: written atomically
    (temp file + rename), so a reader never sees half a file, with the permissions the user's
    umask gives; else to the open text stream ``target`` (standard output)."""
    if not isinstance(target, Path):
        _write_rows(target, result)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            _write_rows(f, result)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


OUTPUT_CHUNK_ROWS = 65536  # rows formatted at once: bounds the Python strings held


def _write_rows(f: TextIO, result: RunResult) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(output_header(result))
    for start in range(0, result.ledger.n_rows, OUTPUT_CHUNK_ROWS):
        rows = slice(start, min(start + OUTPUT_CHUNK_ROWS, result.ledger.n_rows))
        writer.writerows(zip(*_output_columns(result, rows), strict=True))


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _key_names(result: RunResult) -> list[str]:
    """The key columns' names in the output; one that would collide with an output column gets
    'input_' in front."""
    taken = {"id", *RESULT_COLUMNS, "error"} | ({"label"} if result.labels is not None else set())
    return [f"input_{name}" if name in taken else name for name in result.keys]


def _output_columns(result: RunResult, rows: slice) -> list:
    """The output's columns for ``rows``: lists of cells."""
    ledger = result.ledger
    ok = (ledger.state[rows] == RowState.OK).tolist()
    n = len(ok)

    def blank(values: list) -> list:
        return [v if a else "" for v, a in zip(values, ok, strict=True)]

    # Scores: 9 significant digits (float32 round-trips); the rest float32's shortest form.
    scores = blank([f"{x:.9g}" for x in ledger.scores[rows].tolist()])
    flags = blank(ledger.is_anomaly[rows].astype(np.int8).tolist())
    severity = ledger.severity[rows].astype(str)
    severity[np.isnan(ledger.severity[rows])] = ""
    thresholds = blank(ledger.threshold_used[rows].astype(str).tolist())
    versions = np.array([*ledger.model_names, ""], dtype=object)[ledger.model_index[rows]]
    names = np.array(ledger.feature_names, dtype=object)
    missing = [""] * n
    first = rows.start
    for row in range(rows.start, rows.stop):
        indices = ledger.missing.get(row)
        if indices:
            missing[row - first] = ";".join(names[list(indices)].tolist())
    reasons = np.array([*ledger.reasons, ""], dtype=object)
    state = ledger.state[rows]
    at = np.where(state == RowState.FAILED, ledger.reason_index[rows], -1)
    columns = [
        range(rows.start, rows.stop),
        *(values[rows].tolist() for values in result.keys.values()),
        scores,
        flags,
        blank(severity.tolist()),
        thresholds,
        versions.tolist(),
        *_top_columns(ledger, rows),
        missing,
    ]
    if result.labels is not None:
        columns.append(np.asarray(result.labels)[rows].tolist())
    columns.append(reasons[at].tolist())
    return columns


def _top_columns(ledger, rows: slice) -> tuple[list[str], list[str], list[str]]:
    """top_features ('name:share', 3 decimals), top_values and top_expected ('name:value' as
    float32's shortest form): a row's top features most first, separated by ';'."""
    n, k = rows.stop - rows.start, ledger.top_k
    if not k or not ledger.feature_names:
        return [""] * n, [""] * n, [""] * n
    names = np.array([*ledger.feature_names, ""], dtype=object)  # -1 (none) -> ""
    shares, values, expected = [], [], []
    for j in range(k):
        name = names[ledger.top[rows, j]].tolist()
        share = [f"{x:.3f}" for x in ledger.top_share[rows, j].tolist()]
        value = ledger.top_value[rows, j].astype(str).tolist()
        expect = ledger.top_expected[rows, j].astype(str).tolist()
        shares.append([f"{a}:{b}" if a else "" for a, b in zip(name, share, strict=True)])
        values.append([f"{a}:{b}" if a else "" for a, b in zip(name, value, strict=True)])
        expected.append([f"{a}:{b}" if a else "" for a, b in zip(name, expect, strict=True)])

    def join(parts: list[list[str]]) -> list[str]:
        return [";".join(p for p in row if p) for row in zip(*parts, strict=True)]

    return join(shares), join(values), join(expected)

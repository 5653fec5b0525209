"""What a person reads: per-row lines while streaming, a closing summary, and the --output CSV."""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from datasentinel.producer import metrics
from datasentinel.producer.ledger import Outcome, RowState
from datasentinel.producer.settings import Show

if TYPE_CHECKING:
    from datasentinel.producer.app import RunResult

ANOMALY_MARK = "!! ANOMALY"
FAILED_MARK = "!! FAILED"
BASELINE_ROWS = 5  # rows printed first in --show anomalies, so flagged scores have a reference
MAX_FAILURE_LINES = 10
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
        line = (
            f"id {row_id:>{self._id_width}}  score {_number(outcome.scores[i])}  "
            f"threshold {_number(outcome.threshold)}  {verdict:<10}"
        )
        if label is not None:
            line += f"  label {label}"
            if label and not flagged:
                line += " (missed)"
        return self._paint(line.rstrip(), _RED if flagged else None)

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
    model = ", ".join(r.model_versions) or r.model_version or "?"
    fields = [
        ("engine", f"{r.target}, model {model} (threshold {r.threshold:.4g})"),
        ("input", f"{r.source}, {r.batch_size} vectors per message"),
        ("sent", f"{r.vectors_sent} of {r.n_rows} vectors in {r.messages_sent} messages"),
        ("answered", f"{r.answered} ({_percent(r.answered, r.n_rows)})"),
        ("failed", f"{r.failed}"),
        *_recovery_fields(r),
        ("flagged", f"{r.flagged} of {r.answered} answered ({_percent(r.flagged, r.answered)})"),
        ("throughput", _throughput(r)),
    ]
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
    failures = r.failures
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


def write_csv(path: Path, result: RunResult) -> None:
    """One row per input row, in input order: id,score,is_anomaly (+label when known). Rows
    without a result have empty score and is_anomaly. Written atomically (temp file + rename),
    so a reader never sees half a file."""
    ledger = result.ledger
    ok = (ledger.state == RowState.OK).tolist()
    # Rows without a result: empty cells. Scores: 9 significant digits (float32 round-trips).
    scores = [f"{x:.9g}" if a else "" for x, a in zip(ledger.scores.tolist(), ok, strict=True)]
    flags = [int(x) if a else "" for x, a in zip(ledger.is_anomaly.tolist(), ok, strict=True)]
    header = ["id", "score", "is_anomaly"]
    columns = [range(ledger.n_rows), scores, flags]
    if result.labels is not None:
        header.append("label")
        columns.append(np.asarray(result.labels).tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(zip(*columns, strict=True))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""``run()``: the producer as a callable: settings in, a RunResult out (the CLI is a thin shell)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
import tempfile
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TextIO

import numpy as np

from datasentinel.producer.channel.channel import open_channel
from datasentinel.producer.channel.readiness import (
    check_input,
    fetch_model_info,
    model_spec,
    wait_until_serving,
)
from datasentinel.producer.channel.security import ClientSecurity
from datasentinel.producer.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ProducerError
from datasentinel.producer.inputs.csv_reader import read_header
from datasentinel.producer.inputs.sources import ModelSpec, Source, open_source, paced
from datasentinel.producer.outputs.report import (
    LabelMetrics,
    RowPrinter,
    format_summary,
    label_metrics,
    use_color,
    write_csv,
)
from datasentinel.producer.settings import ProducerSettings
from datasentinel.producer.stream.client import Numbering, ScoreStreamClient
from datasentinel.producer.stream.fanout import FanOut
from datasentinel.producer.stream.ledger import Ledger, RowState
from datasentinel.producer.stream.messages import RequestOptions
from datasentinel.producer.stream.retry import Recovery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """Everything a run found out. Row-level data (state, scores, flags, failure reasons) lives
    in ``ledger``, indexed by id (= input row)."""

    target: str
    source: str
    batch_size: int
    model_version: str  # from GetModelInfo; ``model_versions`` holds what actually scored
    threshold: float
    labels: np.ndarray | None
    ledger: Ledger
    stream_error: str | None  # why rows were left unanswered (the last stream's error)
    interrupted: bool
    reconnects: int = 0
    reconnect_seconds: tuple[float, ...] = ()  # per reconnect: break noticed -> new stream
    stream_errors: tuple[str, ...] = ()  # why each broken stream ended
    keys: dict[str, np.ndarray] = field(default_factory=dict)  # key columns: raw text per row
    rejected: int = 0  # rows not sent (a missing value the model cannot fill in, or an infinity)
    rejected_summary: tuple[str, ...] = ()  # per column: rows not sent for it, the first line
    missing_cells: int = 0  # missing values sent as NaN for the model to fill in

    @property
    def n_rows(self) -> int:
        return self.ledger.n_rows

    @property
    def vectors_sent(self) -> int:
        return self.ledger.vectors_sent

    @property
    def messages_sent(self) -> int:
        return self.ledger.messages_sent

    @cached_property
    def answered(self) -> int:
        return self.ledger.count(RowState.OK)

    @property
    def failed(self) -> int:
        return self.n_rows - self.answered

    @cached_property
    def flagged(self) -> int:
        return int(np.count_nonzero(self.ledger.is_anomaly & self._ok))

    @property
    def failures(self) -> list[tuple[str, int]]:
        return self.ledger.failures()

    @property
    def violations(self) -> list[str]:
        return self.ledger.violations

    @property
    def n_violations(self) -> int:
        return self.ledger.n_violations

    @property
    def model_versions(self) -> list[str]:
        return sorted(self.ledger.model_versions)

    @property
    def elapsed_s(self) -> float:
        first, last = self.ledger.first_sent_at, self.ledger.last_answer_at
        return max(last - first, 0.0) if first is not None and last is not None else 0.0

    @property
    def vectors_per_s(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def messages_per_s(self) -> float:
        return self.ledger.messages_answered / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def latencies_ms(self) -> np.ndarray:
        return np.asarray(self.ledger.latencies) * 1000.0

    @cached_property
    def metrics(self) -> LabelMetrics | None:
        """Precision, recall and ROC-AUC against the labels, over the answered rows."""
        if self.labels is None or not self.answered:
            return None
        ok = self._ok
        return label_metrics(self.labels[ok], self.ledger.scores[ok], self.ledger.is_anomaly[ok])

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.failed or self.n_violations:
            return EXIT_FAILED
        return EXIT_OK

    @property
    def _ok(self) -> np.ndarray:
        return self.ledger.state == RowState.OK


def run(settings: ProducerSettings, out: TextIO | None = None) -> RunResult:
    """Loads the input, waits for the engine, streams every vector, prints per-row lines and
    the summary to ``out`` (stdout by default; stderr when the --output CSV goes to stdout) and
    writes ``settings.output``.

    Raises SourceError / InputMismatch (bad input) and EngineNotReady before anything is sent;
    once streaming, problems are in the result (``exit_code``), not raised."""
    to_stdout = is_dash(settings.output)
    out = (sys.stderr if to_stdout else sys.stdout) if out is None else out
    with ExitStack() as stack:
        csv_path = _input_path(settings.csv, stack)
        if csv_path is not None:  # a missing or empty file fails before waiting for the engine
            _naming_stdin(settings, csv_path, read_header, csv_path)
        target = settings.target
        balanced = settings.engine_target is not None
        security = ClientSecurity.from_settings(settings)
        with open_channel(target, security, balanced=balanced) as channel:
            wait_until_serving(channel, target, settings.ready_timeout)
            info = fetch_model_info(channel, target)
            source = _load(settings, csv_path, model_spec(info))
            log.info("input: %s, %d features per vector", source.description, source.width)
            batch_size = check_input(info, source, settings.batch_size)
            options = RequestOptions(settings.threshold, _top_k(settings.top_features, info))
            log.info(
                "streaming to %s (model %s) in messages of %d vectors, at most %d in flight "
                "per stream, %d stream(s)",
                target,
                info.model_version,
                batch_size,
                settings.max_in_flight,
                settings.streams,
            )
            ledger, client = _stream(channel, target, source, settings, batch_size, options, out)
    result = RunResult(
        target=target,
        source=source.description,
        batch_size=batch_size,
        model_version=info.model_version,
        threshold=info.threshold if settings.threshold is None else settings.threshold,
        labels=source.labels,
        ledger=ledger,
        stream_error=client.error,
        interrupted=client.interrupted,
        reconnects=client.reconnects,
        reconnect_seconds=tuple(client.reconnect_seconds),
        stream_errors=tuple(client.stream_errors),
        keys=source.keys,
        rejected=len(source.rejected),
        rejected_summary=source.rejected_summary,
        missing_cells=source.missing_cells,
    )
    if client.error:
        log.error("stream to %s ended early: %s", target, client.error)
    elif client.reconnects:
        log.info("finished after %d reconnect(s)", client.reconnects)
    out.write(format_summary(result))
    out.flush()
    if to_stdout:
        write_csv(sys.stdout, result)
        sys.stdout.flush()
    elif settings.output is not None:
        write_csv(settings.output, result)
        log.info("wrote %d rows to %s", result.n_rows, settings.output)
    return result


def is_dash(path: Path | None) -> bool:
    """True for '-' (standard input or output)."""
    return path is not None and str(path) == "-"


STDIN_NAME = "standard input"


def _input_path(csv: Path | None, stack: ExitStack) -> Path | None:
    """The CSV to read: ``csv``, or for '-' a temporary copy of standard input (the reader goes
    over the file more than once), removed when ``stack`` closes."""
    if not is_dash(csv):
        return csv
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="datasentinel-")))
    path = folder / "stdin.csv"
    with open(path, "wb") as f:
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is not None:
            shutil.copyfileobj(stdin, f)
        else:  # a text stream without bytes (tests)
            f.write(sys.stdin.read().encode())
    return path


def _load(settings: ProducerSettings, csv_path: Path | None, model: ModelSpec) -> Source:
    """The source matched to the model."""
    source = _naming_stdin(
        settings,
        csv_path,
        open_source,
        csv_path,
        settings.label_column,
        settings.count,
        settings.seed,
        model,
    )
    if is_dash(settings.csv) and csv_path is not None:
        description = source.description.replace(str(csv_path), STDIN_NAME)
        source = dataclasses.replace(source, description=description)
    return source


def _naming_stdin(settings: ProducerSettings, csv_path: Path | None, call, *args):
    """``call(*args)``; an error about the copy of standard input names standard input."""
    try:
        return call(*args)
    except ProducerError as e:
        if is_dash(settings.csv) and csv_path is not None:
            raise type(e)(str(e).replace(str(csv_path), STDIN_NAME)) from e
        raise


def _top_k(top_features: int, info) -> int:
    """--top-features, lowered to the model's feature count (the engine refuses more)."""
    if info.input_dim and top_features > info.input_dim:
        log.info(
            "--top-features %d is above the model's %d features; using %d",
            top_features,
            info.input_dim,
            info.input_dim,
        )
        return info.input_dim
    return top_features


def _stream(
    channel,
    target: str,
    source: Source,
    settings: ProducerSettings,
    batch_size: int,
    options: RequestOptions,
    out: TextIO,
):
    ledger = Ledger(source.n_rows, top_k=options.top_features)
    printer = RowPrinter(out, settings.show, source.labels, source.n_rows, use_color(out))
    if len(source.rejected):
        ledger.fail_each(source.rejected, source.rejected_reasons)
        printer.rejected(source.rejected, source.rejected_reasons)
    recovery = Recovery(settings.max_retry_seconds, settings.answer_timeout)
    shared = settings.streams > 1
    numbering = Numbering()
    clients = [
        ScoreStreamClient(
            channel,
            ledger,
            settings.max_in_flight,
            on_outcome=_locked(printer) if shared else printer,
            recovery=recovery,
            wait_ready=lambda timeout: wait_until_serving(channel, target, timeout),
            numbering=numbering,
            close_ledger=not shared,
            options=options,
        )
        for _ in range(settings.streams)
    ]
    client = FanOut(clients, ledger) if shared else clients[0]
    batches = paced(source.batches(batch_size), settings.rate, sleep=client.stopped.wait)
    client.run(batches)
    return ledger, client


def _locked(callback):
    """``callback`` called by one thread at a time (the printer writes lines and counts rows)."""
    lock = threading.Lock()

    def call(*args):
        with lock:
            return callback(*args)

    return call

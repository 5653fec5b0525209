"""Errors that stop a run before it streams, each with the exit code ``main()`` turns it into."""

from __future__ import annotations

# Exit codes of ``datasentinel-produce`` (also listed in producer/README.md).
EXIT_OK = 0  # every vector was answered with a result
EXIT_FAILED = 1  # some vectors failed or went unanswered, or the engine broke the protocol
EXIT_USAGE = 2  # bad settings or input: unreadable CSV, width not matching the model
EXIT_NOT_READY = 3  # the engine was not SERVING within --ready-timeout
EXIT_INTERRUPTED = 130  # Ctrl-C: the run was cancelled (partial summary printed)


class ProducerError(Exception):
    """A run cannot go on; the message is one line a person can act on."""

    exit_code = EXIT_FAILED


class SourceError(ProducerError):
    """The input cannot be turned into vectors (missing file, non-numeric column, empty file...)."""

    exit_code = EXIT_USAGE


class InputMismatch(ProducerError):
    """The input does not fit the model the engine serves (e.g. wrong number of features)."""

    exit_code = EXIT_USAGE


class EngineNotReady(ProducerError):
    """The engine did not report SERVING in time, or could not describe its model."""

    exit_code = EXIT_NOT_READY

"""``main(argv)``: parse settings, set up logging, call ``run()``, return an exit code."""

from __future__ import annotations

import logging
import sys

from datasentinel.producer.app import run
from datasentinel.producer.errors import EXIT_INTERRUPTED, ProducerError
from datasentinel.producer.settings import ProducerSettings
from datasentinel.settings_loader import run_command

log = logging.getLogger("datasentinel.producer")


def main(argv: list[str] | None = None) -> int:
    """Runs the producer with ``argv`` (default: ``sys.argv[1:]``); returns the exit code:
    0 all answered, 1 some failed, 2 bad usage or input, 3 engine not ready, 130 Ctrl-C."""
    _configure_logging()
    return run_command(ProducerSettings, argv, log, _stream)


def _stream(settings: ProducerSettings) -> int:
    try:
        return run(settings).exit_code
    except ProducerError as e:
        log.error("%s", e)
        return e.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED


def _configure_logging() -> None:
    """Diagnostics to stderr (stdout is for results); a no-op when the host app configured it."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

"""``main(argv)``: parse settings, set up logging, call ``run()``, return an exit code."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError
from pydantic_settings import CliApp, SettingsError

from producer.app import run
from producer.errors import EXIT_INTERRUPTED, EXIT_USAGE, ProducerError
from producer.settings import ProducerSettings

log = logging.getLogger("producer")


def main(argv: list[str] | None = None) -> int:
    """Runs the producer with ``argv`` (default: ``sys.argv[1:]``); returns the exit code:
    0 all answered, 1 some failed, 2 bad usage or input, 3 engine not ready, 130 Ctrl-C."""
    _configure_logging()
    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = CliApp.run(ProducerSettings, cli_args=argv)
    except SystemExit as e:  # argparse: --help (0) or a bad flag (2, usage already printed)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    except ValidationError as e:
        log.error("invalid settings: %s", _one_line(e))
        return EXIT_USAGE
    except SettingsError as e:
        log.error("invalid settings: %s", e)
        return EXIT_USAGE
    try:
        return run(settings).exit_code
    except ProducerError as e:
        log.error("%s", e)
        return e.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED


def _one_line(error: ValidationError) -> str:
    """'field: problem (got value)' for each error, on one line."""
    parts = []
    for e in error.errors():
        message = e["msg"].removeprefix("Value error, ")
        if e["loc"]:
            field = ".".join(str(p) for p in e["loc"])
            message = f"{field}: {message} (got {e.get('input')!r})"
        parts.append(message)
    return "; ".join(parts)


def _configure_logging() -> None:
    """Diagnostics to stderr (stdout is for results); a no-op when the host app configured it."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

"""``datasentinel-train``: a thin shell over ``train_and_export``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from datasentinel.settings_loader import run_command
from datasentinel.trainer.errors import TrainerError
from datasentinel.trainer.settings import TrainerSettings

log = logging.getLogger("datasentinel.trainer")

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` (default: ``sys.argv[1:]``) and ``TRAINER_*`` variables, trains, exports
    and prints a summary. Returns 0, or 2 with a one-line error for bad settings or data."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run_command(TrainerSettings, argv, log, _train)


def _train(settings: TrainerSettings) -> int:
    log.info("starting: %s", _what(settings))
    # Imported here, after that first line: torch and the pipeline take seconds to import
    # (5-18 s on a busy machine), and until then a person sees nothing.
    from datasentinel.trainer.pipeline import train_and_export
    from datasentinel.trainer.report.summary import format_summary

    try:
        result = train_and_export(settings)
    except TrainerError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    print(format_summary(result))
    return 0


def _what(settings: TrainerSettings) -> str:
    if settings.data is None:
        return f"{settings.synthetic_rows} rows of synthetic data"
    try:
        size = f" ({settings.data.stat().st_size / 1e6:.3g} MB)"
    except OSError:
        size = ""  # reading it will say what is wrong
    return f"reading {settings.data}{size}, then training"

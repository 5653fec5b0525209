"""``python -m trainer``: a thin shell over ``train_and_export``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import CliApp

from trainer.errors import TrainerError
from trainer.pipeline import train_and_export
from trainer.settings import TrainerSettings
from trainer.summary import format_summary

log = logging.getLogger("trainer")

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` (default: ``sys.argv[1:]``) and ``TRAINER_*`` variables, trains, exports
    and prints a summary. Returns 0, or 2 with a one-line error for bad settings or data."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = CliApp.run(TrainerSettings, cli_args=None if argv is None else list(argv))
        result = train_and_export(settings)
    except ValidationError as exc:
        log.error("invalid settings: %s", _one_line(exc))
        return EXIT_USAGE
    except TrainerError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    print(format_summary(result))
    return 0


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in exc.errors()
    )

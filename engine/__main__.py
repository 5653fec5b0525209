"""``python -m engine``: a thin shell over ``engine.server.serve``."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic_settings import CliApp

from engine.errors import EngineError
from engine.server import ShutdownSignals, serve
from engine.settings import EngineSettings

log = logging.getLogger("engine")


def main(argv: list[str] | None = None) -> int:
    settings = CliApp.run(EngineSettings, cli_args=sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_run(settings))
    except EngineError as exc:  # startup problems a user can fix: one line, no traceback
        log.error("%s", exc)
        return 2
    return 0


async def _run(settings: EngineSettings) -> None:
    signals = ShutdownSignals()
    signals.install()
    await serve(settings, signals)


if __name__ == "__main__":
    sys.exit(main())

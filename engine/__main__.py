"""``datasentinel-engine``: a thin shell over ``engine.server.run_engine`` (one process) or
``engine.workers.supervisor.run_workers`` (several processes on one port)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from datasentinel.engine.errors import EngineError
from datasentinel.engine.security import check_security
from datasentinel.engine.server import configure_logging, run_engine
from datasentinel.engine.settings import EngineSettings
from datasentinel.engine.workers.supervisor import run_workers
from datasentinel.settings_loader import run_command

log = logging.getLogger("datasentinel.engine")


def main(argv: list[str] | None = None) -> int:
    return run_command(EngineSettings, argv, log, _serve)


def _serve(settings: EngineSettings) -> int:
    configure_logging(settings)
    try:
        check_security(settings)  # once, before any worker starts: one warning, one refusal
    except EngineError as exc:
        log.error("%s", exc)
        return 2
    workers = settings.workers or os.cpu_count() or 1
    if workers == 1:
        return asyncio.run(run_engine(settings))
    try:
        return run_workers(settings, workers)
    except EngineError as exc:  # start-up problems a user can fix: one line, no traceback
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())

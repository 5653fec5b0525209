"""The engine's own CPU per single-vector message, gRPC's transport left out, this code beside an
earlier revision's, in one run (issue 22).

serving.py measures the whole server; on a shared machine its rounds spread by 10-20%, more than
the Python the engine adds per message. Here the handlers, built as the engine registers them
(decoding, call admission with its idle limit, the servicer, the scoring core, the coalescer and
batcher, the real model), are driven in-process with a stand-in context: a stream of 2,000
single-vector messages, and unary calls 64 and 1 at a time. Each case runs in a fresh process
per revision, in turn, ``--rounds`` times; the best round is reported (load from outside only
ever adds time).

    python benchmarks/handler_cost.py --models-dir models --baseline main
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("stream", "unary x64", "unary x1")
MESSAGES = 2000


class _Context:
    """What the handlers use of grpc.aio.ServicerContext; counts the stream's results (wire
    bytes; an error answer is a message), so that errors are never measured as answers."""

    def __init__(self) -> None:
        self.results = 0

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"

    async def write(self, message) -> None:
        self.results += type(message) is bytes

    async def abort(self, code, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def _handlers(core):
    """ScoreStream and Score as the engine registers them."""
    import grpc

    from datasentinel.engine.protocol.call_admission import CallAdmission, CallLimits
    from datasentinel.engine.protocol.decoding import _safe_handler
    from datasentinel.engine.protocol.v1_servicer import AnomalyScorerServicer

    servicer = AnomalyScorerServicer(core, 64, 64 << 20)
    admission = CallAdmission(CallLimits(1024, 1024, 16, 16, 300.0))
    service = "/datasentinel.v1.AnomalyScorer/"
    stream = grpc.stream_stream_rpc_method_handler(servicer.ScoreStream)
    unary = grpc.unary_unary_rpc_method_handler(servicer.Score)
    stream = admission.guard(service + "ScoreStream", _safe_handler("ScoreStream", stream, 1 << 26))
    unary = admission.guard(service + "Score", _safe_handler("Score", unary, 1 << 26))
    return stream.stream_stream, unary.unary_unary


async def _stream(handler, requests) -> None:
    async def feed():
        for i, request in enumerate(requests):
            if i % 16 == 0:
                await asyncio.sleep(0)  # a client's messages arrive a few at a time
            yield request

    context = _Context()
    answers = handler(feed(), context)
    if inspect.isasyncgen(answers):  # revisions before issue 22's reader-writer streams
        async for answer in answers:
            await context.write(answer)
    else:
        await answers
    if context.results != len(requests):
        raise SystemExit(f"{len(requests) - context.results} stream messages were not scored")


async def _unary(handler, requests, in_flight: int) -> None:
    async def caller(part):
        for request in part:
            if type(await handler(request, _Context())) is not bytes:
                raise SystemExit("a unary call was not scored")

    await asyncio.gather(*(caller(requests[i::in_flight]) for i in range(in_flight)))


async def _measure(models_dir: Path, case: str) -> float:
    """CPU seconds (all threads) per message of ``case``, best of 5 passes in this process."""
    import numpy as np

    from datasentinel.engine.model.session import RuntimeOptions, load_model
    from datasentinel.engine.scoring.core import Limits, ScoringCore
    from datasentinel.v1 import scoring_pb2 as pb

    model = load_model(models_dir, RuntimeOptions(providers=("CPUExecutionProvider",)))
    core = ScoringCore(model, Limits(inline_rows=64))
    await core.start()
    stream, unary = _handlers(core)
    rng = np.random.default_rng(0)
    requests = [
        pb.ScoreRequest(
            ids=[i],
            raw=pb.RawVectors(
                data=rng.normal(size=model.input_dim).astype("<f4").tobytes(),
                rows=1,
                cols=model.input_dim,
            ),
        )
        for i in range(MESSAGES)
    ]
    if case == "stream":
        run = lambda: _stream(stream, requests)  # noqa: E731
    else:
        run = lambda: _unary(unary, requests, int(case.split("x")[1]))  # noqa: E731
    await run()  # warm up
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        await run()
        best = min(best, time.process_time() - start)
    await core.close()
    return best / MESSAGES


def _child(models_dir: Path, case: str, env: dict[str, str]) -> float:
    command = [sys.executable, __file__, "--models-dir", str(models_dir), "--child", case]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, env={**os.environ, **env}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.models_dir, args.child))))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from baseline import baseline_env

    with tempfile.TemporaryDirectory() as workdir:
        envs = {"this code": {}, f"rev {args.baseline}": baseline_env(args.baseline, Path(workdir))}
        best: dict = {}
        for _ in range(args.rounds):
            for case in CASES:
                for name, env in envs.items():
                    seconds = _child(args.models_dir, case, env)
                    best[case, name] = min(best.get((case, name), float("inf")), seconds)
    print(f"CPU per single-vector message, best of {args.rounds} rounds x 5 passes; {_load()}")
    print(f"{'case':12s} {'this code':>10s} {'rev ' + args.baseline:>14s} {'ratio':>7s}")
    for case in CASES:
        this, base = best[case, "this code"], best[case, f"rev {args.baseline}"]
        print(f"{case:12s} {this * 1e6:8.1f}us {base * 1e6:12.1f}us {this / base:6.2f}x")
    return 0


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f}, {five:.1f}"


if __name__ == "__main__":
    raise SystemExit(main())

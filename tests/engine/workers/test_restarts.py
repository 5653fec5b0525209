"""The supervisor's restart budget and the worker's tie to its supervisor, without processes."""

import asyncio
import os
import signal

from datasentinel.engine.lifeline import DEATH_SIGNAL, Lifeline
from datasentinel.engine.supervision import RestartBudget, describe_exit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_allows_the_limit_within_the_window_then_refuses():
    clock = Clock()
    budget = RestartBudget(limit=2, window=60, clock=clock)
    assert budget.allow() and budget.allow()
    clock.now = 59
    assert not budget.allow()


def test_budget_forgets_restarts_older_than_the_window():
    clock = Clock()
    budget = RestartBudget(limit=2, window=60, clock=clock)
    assert budget.allow()
    clock.now = 30
    assert budget.allow()
    clock.now = 60  # the first restart has left the window, the second has not
    assert budget.allow()
    assert not budget.allow()


def test_zero_limit_never_restarts():
    assert not RestartBudget(limit=0, window=60, clock=Clock()).allow()


def test_exit_descriptions_name_the_signal():
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with 3"


async def test_lifeline_stops_once_when_the_supervisor_pipe_closes():
    stops = []
    read, write = os.pipe()
    lifeline = Lifeline(1234, stop=lambda: stops.append(True))
    watch = asyncio.create_task(lifeline.watch(sentinel=read))
    try:
        await asyncio.sleep(0.05)
        assert stops == []  # supervisor alive: the pipe stays open
        os.close(write)  # what the kernel does when the supervisor's process ends
        await asyncio.wait_for(watch, 10)
        os.kill(os.getpid(), DEATH_SIGNAL)  # the second trigger: no second stop
        await asyncio.sleep(0.05)
        assert stops == [True]
    finally:
        watch.cancel()
        asyncio.get_running_loop().remove_signal_handler(DEATH_SIGNAL)
        os.close(read)


async def test_lifeline_stops_on_the_death_signal():
    stops = []
    read, write = os.pipe()
    lifeline = Lifeline(1234, stop=lambda: stops.append(True))
    watch = asyncio.create_task(lifeline.watch(sentinel=read))
    try:
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), DEATH_SIGNAL)
        for _ in range(200):
            if stops:
                break
            await asyncio.sleep(0.01)
        assert stops == [True] and lifeline.gone
    finally:
        watch.cancel()
        asyncio.get_running_loop().remove_signal_handler(DEATH_SIGNAL)
        os.close(read)
        os.close(write)

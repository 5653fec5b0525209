"""A worker's tie to its supervisor (the lifeline), without processes."""

import asyncio
import os

from datasentinel.engine.workers.parent_watch import DEATH_SIGNAL, Lifeline


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

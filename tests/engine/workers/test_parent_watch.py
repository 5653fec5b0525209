"""A worker's tie to its supervisor (the lifeline), without a supervisor process."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from datasentinel.engine.workers.parent_watch import DEATH_SIGNAL, Lifeline, supervisor_alive
from tests.conftest import REPO


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


def test_on_gone_stops_once():
    stops = []
    lifeline = Lifeline(1234, stop=lambda: stops.append(True))
    lifeline.on_gone()
    lifeline.on_gone()
    assert stops == [True] and lifeline.gone


def test_the_default_stop_is_sigterm_to_the_worker_itself():
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        Lifeline(1234).on_gone()
        for _ in range(100):  # delivered to this process, handled between bytecodes
            if received:
                break
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]


async def test_without_a_parent_process_the_watch_waits_until_cancelled():
    stops = []
    lifeline = Lifeline(None, stop=lambda: stops.append(True))  # pytest has no mp parent
    watch = asyncio.create_task(lifeline.watch())
    try:
        await asyncio.sleep(0.05)
        assert not watch.done() and stops == []
    finally:
        watch.cancel()
        asyncio.get_running_loop().remove_signal_handler(DEATH_SIGNAL)
    with pytest.raises(asyncio.CancelledError):
        await watch
    assert stops == []


def test_supervisor_alive_compares_with_the_parent_pid():
    assert supervisor_alive(os.getppid())
    assert not supervisor_alive(1 if os.getppid() != 1 else 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_death_signal_is_armed_in_the_calling_process():
    # In a child process: arming it here would tie pytest itself to its parent.
    probe = (
        "import ctypes, signal\n"
        "from datasentinel.engine.workers.parent_watch import arm_death_signal\n"
        "assert arm_death_signal()\n"
        "libc, armed = ctypes.CDLL(None), ctypes.c_int()\n"
        "assert libc.prctl(2, ctypes.byref(armed), 0, 0, 0) == 0\n"  # PR_GET_PDEATHSIG
        "print(armed.value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == int(DEATH_SIGNAL)

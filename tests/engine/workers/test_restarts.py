"""The supervisor's restart budget and how it names a worker's exit, without processes."""

import signal

from datasentinel.engine.workers.restarts import RestartBudget, describe_exit


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

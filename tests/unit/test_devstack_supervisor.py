"""``make run``'s restart decisions (pure)."""

from __future__ import annotations

from videoimport_devstack.supervisor import Supervisor
from videoimport_eventlog.retry import RetryPolicy


def test_a_dead_service_is_restarted_after_a_growing_delay() -> None:
    supervisor = Supervisor(
        RetryPolicy(attempts=5, base=1.0, factor=2.0, max_delay=30.0, jitter=0.0)
    )
    supervisor.started("service ingester", 0.0)
    assert supervisor.died("service ingester", 10.0, 0.5) == 1.0
    assert supervisor.pending("service ingester")
    assert supervisor.due(10.5) == []
    assert supervisor.due(11.0) == ["service ingester"]
    supervisor.restarted("service ingester", 11.0)
    assert not supervisor.pending("service ingester")
    assert supervisor.died("service ingester", 12.0, 0.5) == 2.0  # died again soon: longer
    supervisor.restarted("service ingester", 14.0)
    assert supervisor.died("service ingester", 15.0, 0.5) == 4.0
    assert supervisor.restarts == {"service ingester": 2}


def test_one_that_stayed_up_long_enough_starts_from_a_clean_slate() -> None:
    supervisor = Supervisor(
        RetryPolicy(attempts=5, base=1.0, factor=2.0, jitter=0.0), healthy_after=60.0
    )
    supervisor.started("server kafka", 0.0)
    assert supervisor.died("server kafka", 1.0, 0.5) == 1.0
    supervisor.restarted("server kafka", 2.0)
    assert supervisor.died("server kafka", 3.0, 0.5) == 2.0
    supervisor.restarted("server kafka", 5.0)
    assert supervisor.died("server kafka", 500.0, 0.5) == 1.0


def test_a_crash_loop_is_given_up_on() -> None:
    supervisor = Supervisor(RetryPolicy(attempts=3, base=0.1, jitter=0.0))
    supervisor.started("service api", 0.0)
    verdicts = []
    for now in (1.0, 2.0, 3.0):
        verdicts.append(supervisor.died("service api", now, 0.5))
        supervisor.restarted("service api", now + 0.5)
    assert verdicts[:2] == [0.1, 0.2]
    assert verdicts[2] is None

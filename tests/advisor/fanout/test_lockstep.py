"""The driver hears trials training on several workers in the order one process would judge them."""

from __future__ import annotations

from advisor.fanout.lockstep import Lockstep


def test_a_faster_worker_waits_for_the_judgements_that_come_before_its_own() -> None:
    order: Lockstep[str] = Lockstep([4, 5])
    order.arrive(5, 1, "5.1")  # trial 5's worker reached its first evaluation first
    assert order.due() == []  # trial 4's first evaluation comes before it
    order.arrive(4, 1, "4.1")
    assert order.due() == [(4, 1, "4.1", False), (5, 1, "5.1", False)]
    order.arrive(4, 2, "4.2")
    order.arrive(4, 3, "4.3")
    order.arrive(5, 2, "5.2")
    assert order.due() == [(4, 2, "4.2", False), (5, 2, "5.2", False), (4, 3, "4.3", False)]


def test_an_ended_trial_holds_up_nobody_and_a_replayed_judgement_is_answered_at_once() -> None:
    order: Lockstep[str] = Lockstep([0, 1])
    order.arrive(1, 1, "1.1")
    order.end(0)  # pruned before it reached another evaluation, or finished
    assert order.due() == [(1, 1, "1.1", False)]
    order.arrive(1, 1, "1.1 again")  # its task was killed and retried: it replays what it had judged
    assert order.due() == [(1, 1, "1.1 again", True)]
    order.arrive(1, 2, "1.2")
    assert order.due() == [(1, 2, "1.2", False)]

"""Checks on scheduler saga logs shared by the scheduler's integration tests."""

from typing import Iterable, Set

from scootpy.sched.saga.log import MessageType, SagaMessage


def ran_twice(messages: Iterable[SagaMessage]) -> Set[str]:
    """Task ids that got a StartTask after their EndTask (a finished task run again)."""
    ended, bad = set(), set()
    for m in messages:
        if m.type == MessageType.END_TASK:
            ended.add(m.task_id)
        elif m.type == MessageType.START_TASK and m.task_id in ended:
            bad.add(m.task_id)
    return bad

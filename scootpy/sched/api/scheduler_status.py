"""GetSchedulerStatus / SetSchedulerStatus: the advisory task throttle, stored and reported (spec §2.6-2.7, §4.9)."""

from typing import Any

from scootpy.idl import scoot
from scootpy.sched.definitions import validate_max_tasks


def get_scheduler_status(scheduler: Any) -> Any:
    """``currentTasks`` = running + waiting tasks of jobs in progress; ``maxTasks`` = the stored throttle."""
    return scoot.SchedulerStatus(currentTasks=scheduler.current_tasks(), maxTasks=scheduler.throttle)


def set_scheduler_status(scheduler: Any, max_tasks: int) -> None:
    """Store the advisory throttle (-1 unlimited); values below -1 are refused with the reference's text."""
    max_tasks = 0 if max_tasks is None else max_tasks
    validate_max_tasks(max_tasks)
    scheduler.throttle = max_tasks

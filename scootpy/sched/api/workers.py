"""OfflineWorker and ReinstateWorker (spec §2.4, §2.5): an admin check, then the change on the loop."""

from typing import Any

from scootpy.sched.scheduler import SchedulerError


def _check_admin(scheduler: Any, requestor: str, action: str) -> None:
    admins = scheduler.config.admins
    if admins and requestor not in admins:
        raise SchedulerError(f"Requestor {requestor} unauthorized to {action} worker")


def offline_worker(scheduler: Any, req: Any) -> None:
    """OfflineWorker: a null request is a no-op; otherwise admin check, then offline on the loop."""
    if req is None:
        return
    _check_admin(scheduler, req.requestor, "offline")
    scheduler.offline_worker(req.id)


def reinstate_worker(scheduler: Any, req: Any) -> None:
    """ReinstateWorker: a null request is a no-op; otherwise admin check, then reinstate on the loop."""
    if req is None:
        return
    _check_admin(scheduler, req.requestor, "reinstate")
    scheduler.reinstate_worker(req.id)

"""The CloudScoot Thrift handler: one line per RPC, delegating to ``scootpy.sched.api``."""

from typing import Any

from scootpy.sched.api import get_status, kill_job, run_job, scheduler_status, workers


class CloudScootHandler:
    """Methods carry the IDL names; thriftpy2 structs stop here and in ``api``."""

    def __init__(self, scheduler: Any, saga_log: Any):
        self.scheduler = scheduler
        self.saga_log = saga_log

    def RunJob(self, job: Any) -> Any:
        return run_job.run_job(self.scheduler, self.saga_log, job)

    def GetStatus(self, job_id: str) -> Any:
        return get_status.get_status(self.scheduler, self.saga_log, job_id)

    def KillJob(self, job_id: str) -> Any:
        return kill_job.kill_job(self.scheduler, self.saga_log, job_id)

    def OfflineWorker(self, req: Any) -> None:
        workers.offline_worker(self.scheduler, req)

    def ReinstateWorker(self, req: Any) -> None:
        workers.reinstate_worker(self.scheduler, req)

    def GetSchedulerStatus(self) -> Any:
        return scheduler_status.get_scheduler_status(self.scheduler)

    def SetSchedulerStatus(self, max_tasks: int) -> None:
        scheduler_status.set_scheduler_status(self.scheduler, max_tasks)

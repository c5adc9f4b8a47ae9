"""A saga-log throughput figure for the benchmark: records/s under the scheduler's write pattern.

Each job writes StartSaga, then per task StartTask(nil), StartTask(RUNNING), EndTask(result), then EndSaga,
with ``writers`` tasks in flight at once per job and all jobs concurrently, as the scheduler's task runners do.
"""

import time
from typing import Dict

import gevent
from gevent.pool import Pool

from scootpy.runs import RunState, RunStatus
from scootpy.sched.saga.codec import encode_run_status
from scootpy.sched.saga.log import SagaLog
from scootpy.sched.saga.saga import Saga


def saga_log_throughput(log: SagaLog, jobs: int = 4, tasks: int = 50, writers: int = 5) -> Dict[str, float]:
    """Run the write pattern against ``log``; return records, seconds, records_per_s (and the log's stats)."""
    start = time.perf_counter()
    gevent.joinall([gevent.spawn(_one_job, log, f"bench-{i}", tasks, writers) for i in range(jobs)],
                   raise_error=True)
    seconds = time.perf_counter() - start
    records = jobs * (2 + 3 * tasks)
    figures = {"records": float(records), "seconds": seconds, "records_per_s": records / seconds}
    figures.update({k: float(v) for k, v in getattr(log, "stats", {}).items()})
    return figures


def _one_job(log: SagaLog, job_id: str, tasks: int, writers: int) -> None:
    saga = Saga.start(log, job_id, b"bench job " + job_id.encode())

    def run(index: int) -> None:
        task_id = f"task{index}"
        running = RunStatus(RunState.RUNNING, run_id=str(index), job_id=job_id, task_id=task_id, tag=job_id)
        saga.start_task(task_id, None)
        saga.start_task(task_id, encode_run_status(running))
        done = RunStatus(RunState.COMPLETE, run_id=str(index), job_id=job_id, task_id=task_id, tag=job_id)
        saga.end_task(task_id, encode_run_status(done))
    Pool(writers).map(run, range(tasks))
    saga.end_saga()

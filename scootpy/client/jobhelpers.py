"""Test-harness helpers shared by the smoke test, recoverytest and scoot-integration (reference tests/testhelpers).

Random sim jobs, submission that retries while the scheduler is unreachable, and a fast-polling wait for
a set of jobs that logs the reference's ``Job Status`` summary and shows progress on a terminal.
"""

import logging
import random
import string
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from scootpy.client.cloudscoot import ClientError, CloudScootClient
from scootpy.client.progress import Progress
from scootpy.flags import format_duration
from scootpy.idl import scoot

log = logging.getLogger(__name__)

SIM_EXECER = "#! sim execer"
TERMINAL = (scoot.Status.COMPLETED, scoot.Status.ROLLED_BACK)
POLL_INTERVAL_S = 0.02
ERROR_BACKOFF_S = 0.2
SUMMARY_INTERVAL_S = 1.0
START_RETRY_LIMIT_S = 120.0
_ALNUM = string.ascii_lowercase + string.digits
RPC_ERRORS = (ClientError, scoot.InvalidRequest, scoot.ScootServerError, scoot.CanNotScheduleNow)


def gen_job_definition(rng: random.Random, num_tasks: int, snapshot_id: str) -> Any:
    """A job of ``num_tasks`` (1..10 at random when -1) sim tasks sleeping 100 ms, ids ``<i><random alnum>``."""
    if num_tasks == -1:
        num_tasks = rng.randint(1, 10)
    tasks = []
    for i in range(num_tasks):
        suffix = "".join(rng.choice(_ALNUM) for _ in range(rng.randint(1, 20)))
        tasks.append(scoot.TaskDefinition(
            command=scoot.Command(argv=[SIM_EXECER, "sleep 100", "complete 0"]),
            taskId=f"{i}{suffix}", snapshotId=snapshot_id))
    return scoot.JobDefinition(tasks=tasks)


def generate_job(num_tasks: int, snapshot_id: str) -> Any:
    """``gen_job_definition`` with a fresh time-seeded generator, as the reference does."""
    return gen_job_definition(random.Random(time.time_ns()), num_tasks, snapshot_id)


def start_job(client: CloudScootClient, job: Any, limit: float = START_RETRY_LIMIT_S) -> str:
    """Submit ``job``, retrying (with a short backoff) while the scheduler refuses or is unreachable."""
    deadline = time.monotonic() + limit
    delay = 0.01
    while True:
        try:
            return client.run_job(job)
        except RPC_ERRORS as e:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not start a job within {format_duration(limit)}: {e}") from None
            log.info("Error Starting Job: Retrying %s", e)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def is_done(status: Optional[Any]) -> bool:
    return status is not None and status.status in TERMINAL


def _summary(jobs: Dict[str, Optional[Any]]) -> List[str]:
    waiting, running, done = [], [], []
    for job_id in sorted(jobs):
        status = jobs[job_id]
        state = scoot.Status.NOT_STARTED if status is None else status.status
        if state == scoot.Status.NOT_STARTED:
            waiting.append(job_id)
        elif state == scoot.Status.IN_PROGRESS:
            tasks = status.taskStatus or {}
            finished = sum(1 for s in tasks.values() if s == scoot.Status.COMPLETED)
            running.append(f"{job_id} ({finished}/{len(tasks)})")
        elif state == scoot.Status.COMPLETED:
            done.append(job_id)
    return ["", "Job Status", f"Waiting[{' '.join(waiting)}]", f"Running[{' '.join(running)}]",
            f"Done[{' '.join(done)}]"]


def print_jobs(jobs: Dict[str, Optional[Any]]) -> None:
    """Log the reference's summary: Waiting[...], Running[<id> (<done>/<total>) ...], Done[...]."""
    for line in _summary(jobs):
        log.info("%s", line)


def _progress_text(jobs: Dict[str, Optional[Any]], started: float) -> str:
    tasks = [s for st in jobs.values() if st is not None for s in (st.taskStatus or {}).values()]
    finished = sum(1 for s in tasks if s == scoot.Status.COMPLETED)
    done = sum(1 for st in jobs.values() if is_done(st))
    return (f"jobs {done}/{len(jobs)} done, tasks {finished}/{len(tasks)} finished, "
            f"{time.monotonic() - started:.1f}s elapsed")


def wait_for_jobs(client: CloudScootClient, job_ids: List[str], timeout: float,
                  poll: float = POLL_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> Dict[str, Any]:
    """Wait until every job is COMPLETED or ROLLED_BACK; return their last statuses.

    RPC errors only postpone (the scheduler may be restarting). Raises TimeoutError ``Took longer than
    <timeout>`` when ``timeout`` seconds pass first.
    """
    jobs: Dict[str, Optional[Any]] = {job_id: None for job_id in job_ids}
    started = clock()
    end = started + timeout
    progress = Progress()
    last_summary, last_logged = None, -SUMMARY_INTERVAL_S
    try:
        while True:
            if clock() > end:
                raise TimeoutError(f"Took longer than {format_duration(timeout)}")
            full = clock() - last_logged >= SUMMARY_INTERVAL_S
            done, failed = _poll_round(client, jobs, full)
            if full or done:
                summary = _summary(jobs)
                if done or summary != last_summary:
                    print_jobs(jobs)
                last_summary, last_logged = summary, clock()
            progress.show(_progress_text(jobs, started))
            if done:
                log.info("Done")
                return jobs
            time.sleep(ERROR_BACKOFF_S if failed else poll)
    finally:
        progress.close()


def _poll_round(client: CloudScootClient, jobs: Dict[str, Optional[Any]], full: bool) -> Tuple[bool, bool]:
    """Refresh unfinished jobs; (all done, an RPC failed). The first failure ends the round.

    A quick round (``full`` false) stops at the first job still running: the others cannot all be
    done yet, and asking once per poll keeps a fast poll cheap for the scheduler.
    """
    done = True
    for job_id, old in jobs.items():
        if is_done(old):
            continue
        try:
            jobs[job_id] = client.get_status(job_id)
        except RPC_ERRORS as e:
            log.info("Error: Updating Job Status ID: %s will retry later, Error: %s", job_id, e)
            return False, True
        done = done and is_done(jobs[job_id])
        if not done and not full:
            return False, False
    return done, False

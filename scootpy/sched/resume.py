"""Recovery on startup (spec §5.6): every saga without EndSaga becomes a job in progress again.

Tasks with an EndTask stay completed and never run again; every other task waits to run. Damaged sagas
(corrupted logs, undecodable job blobs) are skipped and reported; recovery never stops the scheduler.
"""

import logging
from typing import Any, List, Tuple

from scootpy.sched.definitions import job_from_thrift
from scootpy.sched.saga.codec import decode_job
from scootpy.sched.saga.recovery import recoverable_sagas
from scootpy.sched.saga.saga import Saga

log = logging.getLogger(__name__)


def recover_jobs(scheduler: Any, saga_log: Any) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Hand every recoverable saga to ``scheduler``; return (recovered ids, skipped (id, reason) pairs)."""
    found = recoverable_sagas(saga_log)
    sagas, skipped = found if isinstance(found, tuple) else (found, [])
    skipped = list(skipped)
    recovered = []
    for saga_id, state in sagas:
        try:
            job = job_from_thrift(decode_job(state.job))
        except Exception as e:
            skipped.append((saga_id, f"job blob: {e}"))
            continue
        if job.id != saga_id:
            log.warning("saga %s: its job blob names job %s; using the saga id", saga_id, job.id)
            job = type(job)(saga_id, job.definition)
        completed = [t for t in state.completed_task_ids()]
        scheduler.add_job(job, Saga.resume(saga_log, state), completed, recovered=True)
        recovered.append(saga_id)
        log.info("job %s: recovered, %d of %d tasks already done", saga_id, len(completed), len(job.definition.tasks))
    for saga_id, reason in skipped:
        log.info("saga %s: not recovered: %s", saga_id, reason)
    return recovered, skipped

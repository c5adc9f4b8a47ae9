"""RunJob: translate, validate, admit, start the saga durably, hand the job to the loop (spec §2.1)."""

import dataclasses
import time
import uuid
from typing import Any, Tuple

import gevent

from scootpy.idl import scoot
from scootpy.sched.definitions import (InvalidJobRequest, Job, JobDefinition, job_definition_from_thrift,
                                       job_to_thrift, validate_job)
from scootpy.sched.saga.codec import encode_job
from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.layout import check_task_id
from scootpy.sched.saga.log import MessageType
from scootpy.sched.saga.saga import Saga

BIG_JOB_TASKS = 2000


def _prepare(thrift_job: Any, saga_log: Any) -> JobDefinition:
    definition = job_definition_from_thrift(thrift_job)
    validate_job(definition)
    if isinstance(saga_log, FileSagaLog):
        for task in definition.tasks:  # e.g. "/" in an id: refuse now rather than fail every try later
            try:
                check_task_id(MessageType.END_TASK, task.task_id)
            except ValueError as e:
                raise InvalidJobRequest(str(e)) from None
    return definition


def _serialize(definition: JobDefinition) -> Tuple[Job, bytes]:
    job_id = str(uuid.uuid4())
    job = Job(job_id, dataclasses.replace(definition, tag=definition.tag or job_id))
    return job, encode_job(job_to_thrift(job))


def _off_loop(big: bool, fn, *args):
    """Run CPU-heavy work for big jobs on a thread so other RPCs keep being served meanwhile."""
    if not big:
        return fn(*args)
    return gevent.get_hub().threadpool.apply(fn, args)


def run_job(scheduler: Any, saga_log: Any, thrift_job: Any) -> Any:
    """Admit one job and return its ``scoot.JobId``; raises with the reference's texts."""
    started = time.monotonic()
    scheduler.metrics.inc("schedJobRequestsCounter")
    big = thrift_job is not None and len(thrift_job.tasks or ()) > BIG_JOB_TASKS
    definition = _off_loop(big, _prepare, thrift_job, saga_log)
    scheduler.check_job(definition)
    job, blob = _off_loop(big, _serialize, definition)
    saga = Saga.start(saga_log, job.id, blob)
    scheduler.add_job(job, saga)
    scheduler.metrics.inc("schedJobsCounter")
    scheduler.metrics.observe("schedJobLatency_ms", time.monotonic() - started)
    return scoot.JobId(id=job.id)

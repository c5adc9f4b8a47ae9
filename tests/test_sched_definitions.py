"""Job definitions: translation from scoot.JobDefinition, validation texts, the sched.Job blob (spec §2.1, §5.3)."""

import json

import pytest

from scootpy.idl import scoot
from scootpy.sched.definitions import (Command, InvalidJobRequest, Job, JobDefinition, TaskDefinition,
                                       job_definition_from_thrift, job_from_thrift, job_to_thrift, validate_job,
                                       validate_max_tasks)
from scootpy.sched.saga.codec import decode_job, encode_job
from tests.procs import FIXTURES


def thrift_task(task_id="t", timeout=None, argv=("true",)):
    return scoot.TaskDefinition(command=scoot.Command(argv=list(argv), envVars={"A": "1"}), taskId=task_id,
                                timeoutMs=timeout)


def test_timeouts_fold_the_job_default_into_tasks():
    job = scoot.JobDefinition(tasks=[thrift_task("a", 500), thrift_task("b"), thrift_task("c", 0)],
                              defaultTaskTimeoutMs=-7, priority=1, tag="x", basis="b", requestor="r", jobType="j")
    d = job_definition_from_thrift(job)
    assert [t.command.timeout_ms for t in d.tasks] == [500, -7, -7]
    assert (d.priority, d.tag, d.basis, d.requestor, d.job_type) == (1, "x", "b", "r", "j")
    assert d.tasks[0].command.env == {"A": "1"}
    assert job_definition_from_thrift(scoot.JobDefinition(tasks=[thrift_task()])).tasks[0].command.timeout_ms == 0


@pytest.mark.parametrize("job,text", [
    (None, "nil job definition"),
    (scoot.JobDefinition(tasks=[None]), "nil task definition"),
    (scoot.JobDefinition(tasks=[scoot.TaskDefinition(taskId="a")]), "nil command"),
    (scoot.JobDefinition(tasks=[thrift_task(None)]), "nil taskId"),
])
def test_translation_errors(job, text):
    with pytest.raises(InvalidJobRequest, match=f"^{text}$"):
        job_definition_from_thrift(job)


def test_validation_first_failure_wins():
    with pytest.raises(InvalidJobRequest, match="^invalid job. Must have at least 1 task; was empty$"):
        validate_job(JobDefinition(tasks=()))
    bad = JobDefinition(tasks=(TaskDefinition("ok", Command(("x",), {})), TaskDefinition("", Command((), {}))))
    with pytest.raises(InvalidJobRequest, match='^invalid task id "".$'):
        validate_job(bad)
    with pytest.raises(InvalidJobRequest, match="^invalid task.Command.Argv. Must have at least one argument"):
        validate_job(JobDefinition(tasks=(TaskDefinition("a", Command((), {})),)))
    with pytest.raises(InvalidJobRequest, match=r"^invalid tasks limit:-2. Must be >= -1.$"):
        validate_max_tasks(-2)
    validate_max_tasks(-1)


def test_job_blob_round_trip_in_nanoseconds():
    job = Job("id1", JobDefinition(tasks=(TaskDefinition("a", Command(("sh", "-c", "x"), {"K": "V"}, "snap", 60000)),),
                                   priority=2, tag="id1", requestor="r"))
    blob = encode_job(job_to_thrift(job))
    decoded = decode_job(blob)
    assert decoded.jobDefinition.tasks[0].command.timeout == 60_000_000_000
    assert job_from_thrift(decoded) == job


def test_reference_blob_reads_back_as_its_job_definition():
    jobs = FIXTURES / "saga-log" / "jobs"
    job_id = "b8c9aef3-997a-40bb-4c4e-5e677593d545"
    directory = FIXTURES / "saga-log" / ".scootdata" / "filesagalog" / job_id
    blob = next(directory.glob("StartSagaData_*")).read_bytes()
    job = job_from_thrift(decode_job(blob))
    sent = json.loads((jobs / "a-completed.JobDefinition.json").read_text())
    assert job.id == job_id and job.definition.tag == job_id
    assert [t.task_id for t in job.definition.tasks] == [t["taskId"] for t in sent["tasks"]]
    assert job.definition.tasks[0].command.timeout_ms == 60000
    assert encode_job(job_to_thrift(job)) == blob

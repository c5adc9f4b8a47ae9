"""Hostile ids at a real scheduler with a file saga log: task ids that could break the log's line format or
name paths are refused with a clear error (others work as given), and job ids never reach a saga outside
the log's directory."""

import os
import shutil

import pytest
from thriftpy2.thrift import TApplicationException

from scootpy.idl import scoot
from tests.hardening_helpers import start_scheduler, wait_job
from tests.procs import FIXTURES

pytestmark = pytest.mark.timeout(120)

SAGA_DIR = ".scootdata/filesagalog"
FIXTURE_JOB = "b8c9aef3-997a-40bb-4c4e-5e677593d545"  # fixtures/saga-log job (a): 3 tasks, COMPLETED
CONFIG = {"Cluster": {"Type": "memory", "Count": 4}, "Workers": {"Type": "local"},
          "SagaLog": {"Type": "file", "Directory": SAGA_DIR}}

REFUSED_TASK_IDS = ["../../../escape", "x/y", "a\nb", "\r", "/abs", "a" * 300]
ACCEPTED_TASK_IDS = ["Start Task", "End Saga", "..", " ", "white space", "ünï©ødé", "-rf", "*"]


def one_task_job(task_id: str):
    task = scoot.TaskDefinition(command=scoot.Command(argv=["true"], envVars={}), taskId=task_id)
    return scoot.JobDefinition(tasks=[task], requestor="ids")


def files_under(root) -> set:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def test_hostile_task_ids(procs, tmp_path):
    sched = start_scheduler(procs, tmp_path, CONFIG)
    with sched.client() as client:
        for task_id in REFUSED_TASK_IDS:
            with pytest.raises(TApplicationException) as refused:
                client.RunJob(one_task_job(task_id))
            assert refused.value.type == TApplicationException.INTERNAL_ERROR
            assert "cannot be stored in the file saga log" in refused.value.message, refused.value.message
        for task_id in ACCEPTED_TASK_IDS:
            status = wait_job(client, client.RunJob(one_task_job(task_id)).id, timeout=30)
            assert status.taskStatus == {task_id: scoot.Status.COMPLETED}
            assert status.taskData[task_id].status == scoot.RunStatusState.COMPLETE
    outside = {f for f in files_under(tmp_path) if not f.startswith(SAGA_DIR + os.sep)}
    assert outside == {sched.log.name}, outside
    assert sched.proc.poll() is None


def test_job_ids_never_reach_outside_the_saga_log(procs, tmp_path):
    fixture = FIXTURES / "saga-log" / SAGA_DIR / FIXTURE_JOB
    inside = tmp_path / SAGA_DIR / FIXTURE_JOB
    shutil.copytree(fixture, inside)  # the control: a real saga where it belongs
    above = tmp_path / ".scootdata" / FIXTURE_JOB  # the same saga one level above the log directory
    shutil.copytree(fixture, above)
    for path in (inside, above):
        for name in os.listdir(path):
            os.chmod(path / name, 0o644)
    log = (above / "log").read_text().replace(f"{SAGA_DIR}/{FIXTURE_JOB}/", f".scootdata/{FIXTURE_JOB}/")
    (above / "log").write_text(log)
    sched = start_scheduler(procs, tmp_path, CONFIG)
    with sched.client() as client:
        control = client.GetStatus(FIXTURE_JOB)
        assert control.status == scoot.Status.COMPLETED and len(control.taskStatus) == 3
        for job_id in (f"../{FIXTURE_JOB}", f"../../.scootdata/{FIXTURE_JOB}", f"{tmp_path}/.scootdata/{FIXTURE_JOB}",
                       "..", ".", "", "/etc", "../../../../../../etc", "a\x00b", "x" * 5000):
            status = client.GetStatus(job_id)
            assert status.taskStatus == {} and status.status != scoot.Status.COMPLETED, (job_id, status)
            with pytest.raises(TApplicationException, match="Cannot kill Job Id"):
                client.KillJob(job_id)
        assert client.GetStatus(FIXTURE_JOB) == control
    assert sched.proc.poll() is None

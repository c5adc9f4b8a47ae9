"""Go-style JSON and %+v rendering of thrift structs, checked byte for byte against the reference's output."""

import json

import pytest
from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.transport import TMemoryBuffer

from scootpy.client.jsonout import go_json, go_json_string, go_name, go_string
from scootpy.idl import scoot
from tests.procs import FIXTURES

CLI = FIXTURES / "cli-output" / "scootapi"
JOBS = FIXTURES / "saga-log" / "jobs"


def job_status_from_go_json(text: str):
    """Rebuild a scoot.JobStatus from the reference's JSON (the inverse of what we render)."""
    raw = json.loads(text)
    states = scoot.RunStatusState._NAMES_TO_VALUES
    statuses = scoot.Status._NAMES_TO_VALUES
    task_data = {
        task: scoot.RunStatus(**{**rs, "status": states[rs["status"]]})
        for task, rs in raw.get("taskData", {}).items()
    }
    return scoot.JobStatus(
        id=raw["id"], status=statuses[raw["status"]],
        taskStatus={k: statuses[v] for k, v in raw.get("taskStatus", {}).items()} or None,
        taskData=task_data or None)


@pytest.mark.parametrize("path", [
    CLI / "04-get_job_status-finished-json.stdout",
    CLI / "05-get_job_status-unknown-json.stdout",
    JOBS / "a-completed.get_job_status.json",
    JOBS / "b-killed.get_job_status.json",
    JOBS / "c-unfinished.get_job_status.json",
    FIXTURES / "saga-log" / "jobs" / "b-killed.kill_job.stdout",
])
def test_job_status_json_is_byte_identical(path):
    expected = path.read_text(encoding="utf-8")
    assert go_json(job_status_from_go_json(expected)) + "\n" == expected


def test_empty_maps_are_omitted_but_required_fields_kept():
    status = scoot.JobStatus(id="no-such-job", status=scoot.Status.NOT_STARTED, taskStatus={}, taskData={})
    assert go_json(status) == '{"id":"no-such-job","status":"NOT_STARTED"}'


def test_scheduler_status_json():
    assert go_json(scoot.SchedulerStatus(currentTasks=0, maxTasks=-1)) == '{"currentTasks":0,"maxTasks":-1}'
    assert (CLI / "12-get_scheduler_status-after-set-json.stdout").read_text() == \
        go_json(scoot.SchedulerStatus(currentTasks=0, maxTasks=5)) + "\n"


def test_go_escaping():
    assert go_json_string('a<b>&"\\\n\t\x01\u2028é') == '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\t\\u0001\\u2028é"'
    assert go_json_string(b"\xff") == '"\ufffd"'


def test_go_names():
    assert [go_name(n) for n in ("id", "runId", "bazelResult", "taskData")] == \
        ["ID", "RunId", "BazelResult_", "TaskData"]


def test_text_of_unknown_job_and_scheduler_status():
    status = scoot.JobStatus(id="no-such-job", status=scoot.Status.NOT_STARTED, taskStatus={}, taskData={})
    assert "Job Status: " + go_string(status) + "\n" == (CLI / "06-get_job_status-unknown-text.stdout").read_text()
    assert "Job Status: " + go_string(scoot.SchedulerStatus(currentTasks=0, maxTasks=-1)) + "\n" == \
        (CLI / "08-get_scheduler_status-text.stdout").read_text()


def test_text_of_finished_job_matches_layout_with_values_for_pointers():
    status = job_status_from_go_json((CLI / "04-get_job_status-finished-json.stdout").read_text())
    ours = ("Job Status: " + go_string(status)).split(" ")
    reference = (CLI / "03-get_job_status-finished-text.stdout").read_text().rstrip("\n").split(" ")
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference):
        name, _, value = theirs.partition(":")
        if value.startswith("0xc"):
            assert mine.startswith(name + ":") and mine != name + ":<nil>", (mine, theirs)
        else:
            assert mine == theirs
    assert "OutUri:bs-fs-cc2d10a1baab41ad805129fafe59c0f6d8f3a243--cc2d10a1baab41ad805129fafe59c0f6d8f3a243/STDOUT" \
        in " ".join(ours)


def test_wire_reply_renders():
    data = (FIXTURES / "wire" / "scootapi-scheduler" / "02-GetStatus.reply.bin").read_bytes()
    proto = TBinaryProtocol(TMemoryBuffer(data))
    proto.read_message_begin()
    result = scoot.CloudScoot.GetStatus_result()
    result.read(proto)
    text = go_json(result.success)
    assert '"task-b":{"status":"TIMEDOUT","runId":"1",' in text
    assert '"error":" -\\u003e Error(s) encountered, canceling task."' in text

"""Saga payload codecs: byte equality with the reference's files and round trips."""

import glob
import random
import os

import pytest

from scootpy.idl import bazel, sched, worker
from scootpy.runs import RunState, RunStatus
from scootpy.sched.saga.codec import (JobBlobError, decode_job, decode_run_status, encode_job, encode_run_status,
                                      job_task_ids, payload_to_scoot_run_status)
from scootpy.sched.saga.tjson import go_json_string, tjson_dumps, tjson_loads_into
from tests.procs import FIXTURES

SAGA_DIR = FIXTURES / "saga-log" / ".scootdata" / "filesagalog"
JOB_BLOBS = sorted(glob.glob(str(SAGA_DIR / "*" / "StartSagaData_*")))
TASK_PAYLOADS = [p for p in sorted(glob.glob(str(SAGA_DIR / "*" / "* Task_*"))) if os.path.getsize(p)]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_fixture_inventory():
    assert len(JOB_BLOBS) == 3 and len(TASK_PAYLOADS) == 10


@pytest.mark.parametrize("path", JOB_BLOBS, ids=os.path.basename)
def test_job_blob_round_trip_is_byte_identical(path):
    blob = read(path)
    job = decode_job(blob)
    assert job.id == os.path.basename(os.path.dirname(path))
    assert encode_job(job) == blob


def test_job_blob_content_matches_what_was_submitted():
    by_id = {os.path.basename(os.path.dirname(p)): decode_job(read(p)) for p in JOB_BLOBS}
    a = by_id["b8c9aef3-997a-40bb-4c4e-5e677593d545"]
    assert a.jobDefinition.tag == a.id and a.jobDefinition.priority == 0
    ok = a.jobDefinition.tasks[0]
    assert ok.taskId == "ok" and ok.command.timeout == 60_000_000_000 and ok.command.envVars == {"GREETING": "hi"}
    b = by_id["5f1d2e9e-3ad6-4a42-58a3-cf55ca67bdcf"]
    assert (b.jobDefinition.tag, b.jobDefinition.requestor, b.jobDefinition.priority) == ("kill-me",
                                                                                           "fixture-user", 1)
    assert job_task_ids(encode_job(by_id["52c2a24f-015c-4c2d-4ffc-b49b717eef88"])) == [f"t0{i}" for i in range(10)]


def test_encode_job_writes_every_set_optional_field():
    cmd = sched.Command(argv=["true"], envVars={}, timeout=0, snapshotId="")
    job = sched.Job(id="j", jobDefinition=sched.JobDefinition(jobType="", tasks=[sched.TaskDefinition(
        command=cmd, taskId="t")], priority=0, tag="j", basis="", requestor=""))
    blob = encode_job(job)
    assert decode_job(blob) == job
    assert b"\x0d\x00\x02\x0b\x0b\x00\x00\x00\x00" in blob  # empty envVars map is written, as Go does


@pytest.mark.parametrize("blob", [b"", b"\x00", b"garbage", b"\x0b\x00\x01\x00\x00\x00\x05abc", b"\x0c\x00\x02\x00"])
def test_undecodable_job_blobs_raise_job_blob_error(blob):
    with pytest.raises(JobBlobError):
        decode_job(blob)
    assert job_task_ids(blob) == []


def test_job_missing_required_field_is_refused_both_ways():
    with pytest.raises(JobBlobError, match="Required field"):
        decode_job(b"\x0b\x00\x01\x00\x00\x00\x01x\x00")  # id only, no jobDefinition
    with pytest.raises(JobBlobError):
        encode_job(sched.Job(id="x"))


@pytest.mark.parametrize("path", TASK_PAYLOADS, ids=os.path.basename)
def test_run_status_payload_round_trip_is_byte_identical(path):
    data = read(path)
    status = decode_run_status(data)
    assert encode_run_status(status) == data
    wrs = worker.RunStatus()
    assert tjson_loads_into(wrs, data) is None
    assert tjson_dumps(wrs) == data


def test_run_status_payload_exact_text():
    status = RunStatus(RunState.COMPLETE, run_id="0", out_uri="file:///dev/null", err_uri="file:///dev/null",
                       job_id="J", task_id="task1", tag="G")
    assert encode_run_status(status) == (
        b'{"1":{"i32":3},"2":{"str":"0"},"3":{"str":"file:///dev/null"},"4":{"str":"file:///dev/null"},'
        b'"6":{"i32":0},"8":{"str":"J"},"9":{"str":"task1"},"10":{"str":"G"}}')
    aborted = RunStatus(RunState.ABORTED, error="a -> b & <c>", job_id="J", task_id="t")
    assert encode_run_status(aborted) == (
        b'{"1":{"i32":5},"2":{"str":""},"5":{"str":"a -\\u003e b \\u0026 \\u003cc\\u003e"},"6":{"i32":0},'
        b'"8":{"str":"J"},"9":{"str":"t"}}')
    assert decode_run_status(encode_run_status(aborted)) == aborted


def test_go_json_string_escaping():
    assert go_json_string('a"b\\c\n\r\t\x01\x7f<>&\u2028é') == '"a\\"b\\\\c\\n\\r\\t\\u0001\x7f\\u003c\\u003e\\u0026\\u2028é"'


def test_empty_and_garbage_payloads_decode_to_default_status():
    assert decode_run_status(b"") == RunStatus(RunState.UNKNOWN)
    assert decode_run_status(None) == RunStatus(RunState.UNKNOWN)
    assert decode_run_status(b"\xff\xfe") == RunStatus(RunState.UNKNOWN)
    assert decode_run_status(b"[1,2]") == RunStatus(RunState.UNKNOWN)


def test_truncated_payload_keeps_fields_read_before_the_error():
    partial = b'{"1":{"i32":3},"2":{"str":"7"},"3":{"str":"ur'
    wrs = worker.RunStatus()
    assert tjson_loads_into(wrs, partial) is not None
    assert (wrs.status, wrs.runId, wrs.outUri) == (3, "7", None)


def test_unknown_fields_and_mismatched_types_are_skipped():
    wrs = worker.RunStatus()
    tjson_loads_into(wrs, b'{"1":{"i32":4},"2":{"i32":9},"99":{"str":"x"},"6":{"i32":"12"}}')
    assert (wrs.status, wrs.runId, wrs.exitCode) == (4, None, 12)


def test_nested_structs_containers_binary_bool_double_round_trip():
    result = bazel.ActionResult(
        outputFiles=[bazel.OutputFile(path="a/b", isExecutable=True)], exitCode=2, stdoutRaw=b"\x00\xffhi",
        cached=False)
    wrs = worker.RunStatus(status=3, runId="1", exitCode=0, bazelResult=result)
    data = tjson_dumps(wrs)
    assert b'"11":{"rec":{"1":{"lst":["rec",1,{' in data and b'"4":{"str":"AP9oaQ=="}' in data
    assert b'"11":{"tf":0}' in data
    back = worker.RunStatus()
    assert tjson_loads_into(back, data) is None
    assert back == wrs


def test_map_encoding():
    cmd = worker.RunCommand(argv=["x"], env={"B": "2", "A": "1"}, timeoutMs=5)
    data = tjson_dumps(cmd)
    assert data == (b'{"1":{"lst":["str",1,"x"]},"2":{"map":["str","str",2,{"B":"2","A":"1"}]},'
                    b'"4":{"i32":5}}')
    back = worker.RunCommand()
    tjson_loads_into(back, data)
    assert back == cmd


def test_payload_to_scoot_run_status():
    assert payload_to_scoot_run_status(None) is None
    empty = payload_to_scoot_run_status(b"")
    assert (empty.status, empty.runId, empty.exitCode, empty.outUri) == (0, "", None, None)
    full = payload_to_scoot_run_status(encode_run_status(RunStatus(RunState.FAILED, run_id="2", error="e",
                                                                   exit_code=240, job_id="J", task_id="t",
                                                                   tag="g")))
    assert (full.status, full.runId, full.error, full.exitCode) == (4, "2", "e", 240)
    assert (full.jobId, full.taskId, full.tag) == (None, None, None)
    assert payload_to_scoot_run_status(b'{"1":{"i32":42},"2":{"str":"x"}}') is None


@pytest.mark.parametrize("tail", [
    b"\x0f\x00\x02\x01\x7f\xff\xff\xff",  # list of 2^31-1 elements of an invalid type (would loop for ever)
    b"\x0f\x00\x02\x0c\x7f\xff\xff\xff",  # list of 2^31-1 structs in a few bytes
    b"\x0d\x00\x02\x0b\x0b\x7f\xff\xff\xff",  # map announcing 2^31-1 entries
    b"\x0f\x00\x02\x0c\xff\xff\xff\xff",  # negative count
    b"\x0b\x00\x04\x7f\xff\xff\xff",  # string longer than the blob
])
def test_hostile_job_blobs_fail_fast_without_allocating(tail):
    blob = b"\x0b\x00\x01\x00\x00\x00\x01x\x0c\x00\x02" + tail
    with pytest.raises(JobBlobError):
        decode_job(blob)


def test_mutated_job_blobs_only_ever_raise_job_blob_error():
    rng = random.Random(7)
    blobs = [read(p) for p in JOB_BLOBS]
    for _ in range(1000):
        blob = bytearray(rng.choice(blobs))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(blob))
            if rng.random() < 0.6:
                blob[pos] = rng.randrange(256)
            else:
                del blob[pos:pos + rng.randint(1, 16)]
        try:
            decode_job(bytes(blob))
        except JobBlobError:
            pass


def test_deeply_nested_payload_is_ignored_not_a_crash():
    assert decode_run_status(b"[" * 100_000) == RunStatus(RunState.UNKNOWN)
    nested = b'{"1":{"i32":3},"11":{"rec":' + b'{"5":{"rec":' * 50_000
    assert decode_run_status(nested).state == RunState.COMPLETE

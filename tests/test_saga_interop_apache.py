"""Saga payloads checked against an independent Thrift implementation (Apache Thrift Python stubs).

Apache's TJSONProtocol and TBinaryProtocol must read what we write (and the reference wrote) to the same
values, and Apache's TJSONProtocol output must be the same JSON document as ours.
"""

import glob
import importlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from thrift.protocol import TBinaryProtocol, TJSONProtocol
from thrift.transport import TTransport

from scootpy.idl import bazel, idl_dir, worker
from scootpy.sched.saga.codec import decode_job, encode_job
from scootpy.sched.saga.tjson import tjson_dumps, tjson_loads_into
from tests.procs import FIXTURES

SAGA_DIR = FIXTURES / "saga-log" / ".scootdata" / "filesagalog"


@pytest.fixture(scope="module")
def ap(tmp_path_factory):
    if shutil.which("thrift") is None:
        pytest.fail("the Apache Thrift compiler is missing: run .ci/system-deps (Debian package thrift-compiler)")
    root = tmp_path_factory.mktemp("apache-saga")
    (root / "apsaga").mkdir()
    for name in ("bazel", "worker", "sched"):
        subprocess.run(["thrift", "--gen", "py:package_prefix=apsaga.", "-out", str(root / "apsaga"),
                        str(idl_dir() / f"{name}.thrift")], check=True)
    (root / "apsaga" / "__init__.py").touch()
    sys.path.insert(0, str(root))
    try:
        yield {name: importlib.import_module(f"apsaga.{name}.ttypes") for name in ("worker", "sched")}
    finally:
        sys.path.remove(str(root))


def apache_read(obj, data, protocol):
    obj.read(protocol(TTransport.TMemoryBuffer(data)))
    return obj


def apache_write(obj, protocol):
    buf = TTransport.TMemoryBuffer()
    obj.write(protocol(buf))
    return buf.getvalue()


def plain(value):
    """Field values of a struct from either implementation, by name."""
    if hasattr(value, "thrift_spec"):
        return {k: plain(v) for k, v in sorted(vars(value).items()) if not k.startswith("_") and v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def rich_status():
    result = bazel.ActionResult(
        outputFiles=[bazel.OutputFile(path="out/a", digest=bazel.Digest(hash="ab", sizeBytes=3), isExecutable=True)],
        exitCode=3, stdoutRaw=b"\x00\x01\xffbytes", cached=False,
        executionMetadata=bazel.ExecutedActionMetadata(worker="w", queuedTimestamp=bazel.Timestamp(1, 2)))
    return worker.RunStatus(status=4, runId="7", error="a -> b & <c> \"q\" \u00e9\n", exitCode=-1,
                            snapshotId="s", jobId="j", taskId="t", tag="g", bazelResult=result)


PAYLOADS = [p for p in sorted(glob.glob(str(SAGA_DIR / "*" / "* Task_*"))) if os.path.getsize(p)]
BLOBS = sorted(glob.glob(str(SAGA_DIR / "*" / "StartSagaData_*")))


@pytest.mark.parametrize("path", PAYLOADS, ids=os.path.basename)
def test_apache_reads_fixture_payloads_like_us(ap, path):
    data = open(path, "rb").read()
    theirs = apache_read(ap["worker"].RunStatus(), data, TJSONProtocol.TJSONProtocol)
    ours = worker.RunStatus()
    assert tjson_loads_into(ours, data) is None
    assert plain(ours) == plain(theirs)


def test_apache_reads_our_rich_payload_and_writes_the_same_document(ap):
    ours = tjson_dumps(rich_status())
    theirs = apache_read(ap["worker"].RunStatus(), ours, TJSONProtocol.TJSONProtocol)
    assert plain(theirs) == plain(rich_status())
    assert json.loads(apache_write(theirs, TJSONProtocol.TJSONProtocol)) == json.loads(ours)
    back = worker.RunStatus()
    assert tjson_loads_into(back, apache_write(theirs, TJSONProtocol.TJSONProtocol)) is None
    assert back == rich_status()


@pytest.mark.parametrize("path", BLOBS, ids=os.path.basename)
def test_apache_binary_agrees_on_job_blobs(ap, path):
    blob = open(path, "rb").read()
    theirs = apache_read(ap["sched"].Job(), blob, TBinaryProtocol.TBinaryProtocol)
    assert apache_write(theirs, TBinaryProtocol.TBinaryProtocol) == blob == encode_job(decode_job(blob))
    assert plain(theirs) == plain(decode_job(blob))

"""The harness helpers (random jobs, submission retries, fast waiting) against a small real CloudScoot server."""

import random
import re

import pytest

from scootpy.client.cloudscoot import CloudScootClient
from scootpy.client.jobhelpers import SIM_EXECER, gen_job_definition, start_job, wait_for_jobs
from scootpy.client.scootapi import execute
from scootpy.idl import scoot
from scootpy.thriftrpc import ThriftServer
from tests.procs import free_port
from tests.test_scootapi_cli import Scheduler


class CompletingScheduler(Scheduler):
    """Jobs finish after a few status polls; the first RunJob calls are refused."""

    def __init__(self, polls_to_finish=3, refusals=2):
        super().__init__()
        self.polls = {}
        self.polls_to_finish = polls_to_finish
        self.refusals = refusals

    def RunJob(self, job):
        if self.refusals:
            self.refusals -= 1
            raise scoot.CanNotScheduleNow(retryAfterMs=1)
        return super().RunJob(job)

    def GetStatus(self, job_id):
        status = super().GetStatus(job_id)
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        if job_id in self.statuses and self.polls[job_id] >= self.polls_to_finish:
            status.status = scoot.Status.COMPLETED
            status.taskStatus = {t: scoot.Status.COMPLETED for t in status.taskStatus}
        return status


@pytest.fixture
def server():
    handler = CompletingScheduler()
    srv = ThriftServer(scoot.CloudScoot, handler, ("127.0.0.1", 0))
    srv.start()
    handler.client = CloudScootClient(f"127.0.0.1:{srv.address[1]}")
    yield handler
    handler.client.close()
    srv.stop()


def test_generated_jobs_look_like_the_references():
    rng = random.Random(7)
    for _ in range(50):
        job = gen_job_definition(rng, -1, "snap")
        assert 1 <= len(job.tasks) <= 10
        ids = [t.taskId for t in job.tasks]
        assert len(set(ids)) == len(ids)
        for i, task in enumerate(job.tasks):
            assert re.fullmatch(rf"{i}[a-z0-9]{{1,20}}", task.taskId)
            assert task.command.argv == [SIM_EXECER, "sleep 100", "complete 0"]
            assert task.snapshotId == "snap" and task.timeoutMs is None and task.command.envVars is None
        assert job.tag is None and job.priority is None
    assert len(gen_job_definition(rng, 4, "").tasks) == 4


def test_start_job_retries_until_accepted_and_wait_sees_completion(server):
    job_ids = [start_job(server.client, gen_job_definition(random.Random(i), 2, "")) for i in range(3)]
    assert server.refusals == 0 and len(set(job_ids)) == 3
    statuses = wait_for_jobs(server.client, job_ids, timeout=10)
    assert all(s.status == scoot.Status.COMPLETED for s in statuses.values())


def test_wait_times_out_with_the_references_text(server):
    server.polls_to_finish = 10 ** 6
    job_id = start_job(server.client, gen_job_definition(random.Random(1), 1, ""))
    with pytest.raises(TimeoutError, match=r"^Took longer than 200ms$"):
        wait_for_jobs(server.client, [job_id], timeout=0.2)


def test_wait_tolerates_an_unreachable_scheduler_until_its_timeout():
    client = CloudScootClient(f"127.0.0.1:{free_port()}")
    with pytest.raises(TimeoutError):
        wait_for_jobs(client, ["a"], timeout=0.3)


def test_smoke_test_failure_is_a_panic_with_exit_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert execute(["run_smoke_test", "--num_jobs", "0", "--addr", "localhost:1"]) == 2
    assert "panic: num_jobs must be at least 1, got 0\n" in capsys.readouterr().err


class Tty:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_only_on_a_terminal():
    from scootpy.client.progress import Progress
    tty, pipe = Tty(True), Tty(False)
    for stream in (tty, pipe):
        progress = Progress(stream)
        progress.show("jobs 1/2 done")
        progress.show("jobs 2/2 done")
        progress.close()
    assert tty.text == "\r\x1b[Kjobs 1/2 done\r\x1b[Kjobs 2/2 done\n"
    assert pipe.text == ""


def test_log_lines_erase_the_progress_line():
    import logging
    from scootpy.client.progress import Progress
    tty = Tty(True)
    handler = logging.StreamHandler(tty)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        progress = Progress(tty)
        progress.show("p1")
        logging.getLogger("x").warning("hello")
        progress.show("p2")
        progress.close()
    finally:
        root.removeHandler(handler)
    assert tty.text == "\r\x1b[Kp1\r\x1b[Khello\n\r\x1b[Kp2\n"
    assert not handler.filters


def test_tool_failures_carry_the_tools_error_line(tmp_path, monkeypatch):
    from scootpy.client.smoke import run_tool
    tool = tmp_path / "fake-tool"
    tool.write_text("#!/bin/sh\necho 'time=x level=info msg=hi' >&2\necho 'Error: it broke' >&2\nexit 3\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(RuntimeError, match=r"^exit status 3 \(Error: it broke\)$"):
        run_tool(["fake-tool"])
    with pytest.raises(RuntimeError, match="executable file not found"):
        run_tool(["no-such-tool-xyz"])

"""``scootapi run_smoke_test``: the reference's smoke test, step for step.

Two input snapshots (``file.txt`` = ``first`` / ``second``) are made with ``scoot-snapshot-db create
ingest_dir`` (in the cwd's git repository, or a private one when the cwd is in none); job 0 runs
``cat file.txt`` six times on them, jobs 1..N-1 are random sim jobs. Once every
job is COMPLETED or ROLLED_BACK, the output snapshots of tasks id1 and id2 must have a ``STDOUT`` ending
in ``first`` and ``second``. A failure prints ``panic: <error>`` and exits 2, like the reference.
"""

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, List, Optional, Tuple

from scootpy.client.cobra import CobraCommand, GoFlag
from scootpy.client.jobhelpers import RPC_ERRORS, generate_job, start_job, wait_for_jobs
from scootpy.idl import scoot

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT_S = 120.0


class Panic(Exception):
    """A failure reported the reference's way: ``panic: <text>`` on stderr, exit status 2."""


def find_tool(name: str) -> str:
    """A client tool the harnesses run: on PATH first (as the reference does), else next to this Python."""
    found = shutil.which(name)
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside, os.X_OK):
        return beside
    raise FileNotFoundError(f'exec: "{name}": executable file not found in $PATH')


def run_tool(argv: List[str], cwd: Optional[str] = None) -> bytes:
    """Run a client tool and return its stdout. Its stderr is kept out of ours (as in the reference);
    a failure reads ``exit status N`` followed by the tool's ``Error:`` line (or its last line)."""
    try:
        done = subprocess.run([find_tool(argv[0])] + argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, cwd=cwd, timeout=SNAPSHOT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{argv[0]} timed out after {SNAPSHOT_TIMEOUT_S:g}s") from None
    except OSError as e:
        raise RuntimeError(str(e)) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")] or lines[-1:]
        raise RuntimeError(f"exit status {done.returncode}" + (f" ({errors[0]})" if errors else ""))
    return done.stdout


def ingest_dir(path: str, repo: Optional[str] = None) -> str:
    """``scoot-snapshot-db create ingest_dir --dir path``; the id with its trailing newline removed."""
    out = run_tool(["scoot-snapshot-db", "create", "ingest_dir", "--dir", path], cwd=repo).decode("utf-8", "replace")
    return out[:-1] if out.endswith("\n") else out


def data_repo(tmp: str) -> Optional[str]:
    """Where scoot-snapshot-db runs: the cwd when it is inside a git work tree (as in the reference),
    otherwise a private repository in ``tmp`` (the reference would fail there)."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "stdin": subprocess.DEVNULL}
    repo = os.path.join(tmp, "data-repo")
    try:
        if subprocess.run(["git", "rev-parse", "--show-toplevel"], check=False, **quiet).returncode == 0:
            return None
        subprocess.run(["git", "init", "-q", repo], check=True, **quiet)
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"git: {e}") from None
    log.info("cwd is not in a git repository; scoot-snapshot-db runs in %s", repo)
    return repo


def generate_snapshots(tmp: str, repo: Optional[str]) -> Tuple[str, str]:
    data = tempfile.mkdtemp(prefix="testdata", dir=tmp)
    path = os.path.join(data, "file.txt")
    with open(path, "w") as f:
        f.write("first")
    id1 = ingest_dir(data, repo)
    with open(path, "w") as f:
        f.write("second")
    return id1, ingest_dir(data, repo)


def check_snapshot(snapshot_id: str, which: str, expected: str, repo: Optional[str]) -> None:
    """The output snapshot's STDOUT must end exactly with ``expected``."""
    text = run_tool(["scoot-snapshot-db", "read", "cat", "--id", snapshot_id, "STDOUT"],
                    cwd=repo).decode("utf-8", "replace")
    if not text.endswith(expected):
        raise RuntimeError(f'expected {which} out snapshot {snapshot_id} to contain "{expected}" but got {text!r}')


def data_job(id1: str, id2: str) -> Any:
    """Job 0: ``cat file.txt`` on id1, id2, id1, id1, id2, id2 (repeats exercise the shared store)."""
    snapshots = [id1, id2, id1, id1, id2, id2]
    return scoot.JobDefinition(tasks=[
        scoot.TaskDefinition(command=scoot.Command(argv=["cat", "file.txt"]), snapshotId=snap, taskId=f"id{i}")
        for i, snap in enumerate(snapshots, 1)])


def _output_snapshot(status: Any, task: str) -> str:
    run = (status.taskData or {}).get(task)
    if run is None or not run.snapshotId:
        raise RuntimeError(f"task {task} of job {status.id} has no output snapshot")
    return run.snapshotId


def run_smoke(client: Any, num_jobs: int, num_tasks: int, timeout: float) -> None:
    """The whole smoke test; raises on any failure."""
    if num_jobs < 1:
        raise ValueError(f"num_jobs must be at least 1, got {num_jobs}")
    tmp = tempfile.mkdtemp(prefix="scoot-tmp-")
    try:
        repo = data_repo(tmp)
        id1, id2 = generate_snapshots(tmp, repo)
        jobs = [start_job(client, data_job(id1, id2))]
        jobs += [start_job(client, generate_job(num_tasks, id1)) for _ in range(1, num_jobs)]
        wait_for_jobs(client, jobs, timeout)
        status = client.get_status(jobs[0])
        check_snapshot(_output_snapshot(status, "id1"), "first", "first", repo)
        check_snapshot(_output_snapshot(status, "id2"), "second", "second", repo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_smoke_test(cli: Any, args: List[str], num_jobs: int, num_tasks: int, timeout: float,
                   bundlestore: str) -> None:
    log.info("Starting Smoke Test")
    log.info("** Note ** Inmemory workers not supported at time since everything they do is a nop.")
    try:
        run_smoke(cli.client, num_jobs, num_tasks, timeout)
    except (RuntimeError, ValueError, TimeoutError, *RPC_ERRORS) as e:
        raise Panic(str(e)) from None
    log.info("Smoke test passed: %d jobs", num_jobs)


COMMAND = CobraCommand("run_smoke_test", run_smoke_test, "Smoke Test", [
    GoFlag("num_jobs", "int", 100, "number of jobs to run"),
    GoFlag("num_tasks", "int", -1, "number of tasks per job, or random if -1"),
    GoFlag("timeout", "duration", 180.0, "how long to wait for the smoke test"),
    GoFlag("bundlestore", "string", "", "address in the form of host:port"),
])

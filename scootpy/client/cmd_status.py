"""``scootapi get_job_status``, ``kill_job`` and ``watch_job``.

Status goes to stdout as one compact Go-style JSON document (``--json``) or as ``Job Status: JobStatus(...)``;
``watch_job`` prints nothing on stdout, logs a status block every 3 s and shows progress on stderr when it
is a terminal, until the job is COMPLETED or ROLLED_BACK.
"""

import logging
import time
from typing import Any, Callable, List

from scootpy.client.cloudscoot import ClientError, go_error_text
from scootpy.client.cmd_run_job import go_list
from scootpy.client.cobra import CobraCommand, CobraError, GoFlag
from scootpy.client.jsonout import go_json, go_string
from scootpy.client.progress import Progress
from scootpy.idl import scoot

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 3.0
TERMINAL = (scoot.Status.COMPLETED, scoot.Status.ROLLED_BACK)
RPC_ERRORS = (scoot.InvalidRequest, scoot.ScootServerError, ClientError)


def rpc_error(exc: BaseException, default_prefix: str) -> CobraError:
    """The reference's wording for a failed status-like call."""
    if isinstance(exc, scoot.InvalidRequest):
        return CobraError(f"Invalid Request: {exc.message or ''}")
    if isinstance(exc, scoot.ScootServerError):
        return CobraError(f"Scoot server error: {go_error_text(exc)}")
    return CobraError(f"{default_prefix}{exc}")


def print_status(status: Any, as_json: bool, log_task_data: bool) -> None:
    """Print a JobStatus on stdout (and log it) as get_job_status/kill_job do."""
    if as_json:
        text = go_json(status)
        log.info("%s\n", text)
        print(text, flush=True)
        return
    text = go_string(status)
    log.info("Job Status:%s", text)
    if log_task_data:
        log.info("Task Data:")
        for task, run in (status.taskData or {}).items():
            log.info("%s: ExitCode: %s, Error: %s", task, run.exitCode or 0, run.error or "")
    print("Job Status:", text, flush=True)


def _job_call(args: List[str], json: bool, call: Callable[[str], Any], log_task_data: bool) -> None:
    """Call ``call(job id)`` and print the JobStatus it returns, as get_job_status and kill_job do."""
    if not args:
        raise CobraError("a job id must be provided")
    try:
        status = call(args[0])
    except RPC_ERRORS as e:
        raise rpc_error(e, "Error getting status: ") from None
    print_status(status, json, log_task_data)


def get_job_status(cli: Any, args: List[str], json: bool) -> None:
    log.info("Checking Status for Scoot Job%s", go_list(args))
    _job_call(args, json, cli.client.get_status, log_task_data=True)


def kill_job(cli: Any, args: List[str], json: bool) -> None:
    log.info("Killing Scoot Job%s", go_list(args))
    _job_call(args, json, cli.client.kill_job, log_task_data=False)


def log_job_status(status: Any) -> None:
    """The status block ``watch_job`` logs on every poll."""
    log.info("Job id: %s\n", status.id)
    log.info("Job status: %s\n", scoot.Status._VALUES_TO_NAMES.get(status.status, status.status))
    for task, task_status in (status.taskStatus or {}).items():
        log.info("\tTask %s {\n", task)
        log.info("\t\tStatus: %s\n", scoot.Status._VALUES_TO_NAMES.get(task_status, task_status))
        run = (status.taskData or {}).get(task)
        if run is not None:
            for label, value in (("Stdout", run.outUri), ("Stderr", run.errUri), ("Snapshot", run.snapshotId)):
                if value is not None:
                    log.info("\t\t%s: %s\n", label, value)
            if task_status == scoot.Status.COMPLETED:
                if run.exitCode is not None:
                    log.info("\t\tExitCode: %d\n", run.exitCode)
                if run.error is not None:
                    log.info("\t\tError: %s\n", run.error)
        log.info("\t}\n")


def watch_job(cli: Any, args: List[str]) -> None:
    log.info("Watching job:%s", go_list(args))
    if not args:
        raise CobraError("a job id must be provided")
    progress = Progress()
    started = time.monotonic()
    try:
        while True:
            try:
                status = cli.client.get_status(args[0])
            except (scoot.InvalidRequest, scoot.ScootServerError, ClientError) as e:
                raise rpc_error(e, "Error getting status: ") from None
            log_job_status(status)
            tasks = status.taskStatus or {}
            done = sum(1 for s in tasks.values() if s == scoot.Status.COMPLETED)
            progress.show(f"job {status.id}: {done}/{len(tasks)} tasks done, "
                          f"{time.monotonic() - started:.0f}s elapsed")
            if status.status in TERMINAL:
                return
            time.sleep(WATCH_INTERVAL_S)
    finally:
        progress.close()


GET_JOB_STATUS = CobraCommand("get_job_status", get_job_status, "GetJobStatus",
                              [GoFlag("json", "bool", False, "Print out status as JSON")])
KILL_JOB = CobraCommand("kill_job", kill_job, "KillJob",
                        [GoFlag("json", "bool", False, "Print out job status as JSON")])
WATCH_JOB = CobraCommand("watch_job", watch_job, "Watch job")

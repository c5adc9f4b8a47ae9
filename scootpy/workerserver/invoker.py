"""One run from start to final status: checkout, log files, exec, abort/timeout/memory cap, output snapshot.

Stages (the reference's, split into small steps): PENDING through checkout and log-file setup; RUNNING once
the command started; then the first of abort (ABORTED), timeout (TIMEDOUT, counted from the start of the
run, checkout included), or process end. A COMPLETE process has its STDOUT/STDERR/STDLOG ingested as the
output snapshot before the run is reported COMPLETE. Worker-side failures are FAILED with codes 200-250.
"""

import dataclasses
import logging
import time
from typing import Callable, Dict, List, Optional, Union

import gevent
import gevent.event

from scootpy.metrics import Registry
from scootpy.runs import RunCommand, RunState, RunStatus
from scootpy.snapshots.ids import is_bazel_id
from scootpy.workerserver.execer import ExecError, Execer, ExecState, Process, ProcessStatus
from scootpy.workerserver.filer import CHECKOUT_FAILURE, Checkout, Filer, FilerError
from scootpy.workerserver.gotext import command_string, go_duration_ms, go_time_now
from scootpy.workerserver.outputs import Output, OutputCreator

log = logging.getLogger(__name__)

MARKER = "###########################################\n" * 2
PRE_PROCESSING_FAILURE = 200
LOG_CREATION_FAILURE = 220
COULD_NOT_EXEC = 240
POST_EXEC_FAILURE = 250
Publish = Callable[[RunStatus], None]


@dataclasses.dataclass
class _Logs:
    stdout: Output
    stderr: Output
    stdlog: Output

    def all(self) -> List[Output]:
        return [self.stdout, self.stderr, self.stdlog]

    def write_all(self, text: str) -> None:
        for out in self.all():
            out.write(text.encode())

    def close(self) -> None:
        for out in self.all():
            out.close()


def header(logs: _Logs, cmd: RunCommand) -> str:
    """The banner written at the top of all three log files."""
    return (f"{MARKER}\n\nDate: {go_time_now()}\nOut: {logs.stdout.uri}\tErr: {logs.stderr.uri}"
            f"\tOutErr: {logs.stdlog.uri}\tCmd:\n{command_string(cmd)}\n\n{MARKER}\n\n\nSCOOT_CMD_LOG\n")


def footer(reason: str) -> str:
    """The text appended to all three log files when a run is cut short."""
    return f"\n\n{MARKER}\n\nFAILED\n\n{reason}"


class Invoker:
    """Runs one command at a time for the queue; see the module docstring."""

    def __init__(self, filer: Filer, outputs: OutputCreator, execer: Execer, metrics: Registry):
        self.filer = filer
        self.outputs = outputs
        self.execer = execer
        self.metrics = metrics

    def run(self, run_id: str, cmd: RunCommand, abort: gevent.event.Event, publish: Publish,
            bazel: bool = False) -> RunStatus:
        """Execute ``cmd`` as run ``run_id``; ``publish`` gets RUNNING; returns the final status."""
        started = time.monotonic()
        done = _Statuses(run_id, cmd)
        try:
            if abort.is_set():  # aborted while still queued: nothing was started
                return done.state(RunState.ABORTED)
            if bazel or is_bazel_id(cmd.snapshot_id):
                return done.failed(PRE_PROCESSING_FAILURE,
                                   "Invoker does not have filer for command of RunType: Bazel")
            checkout = self._checkout(cmd, abort, done)
            if isinstance(checkout, RunStatus):
                return checkout
            try:
                return self._run_in(checkout, cmd, abort, publish, done, started)
            finally:
                checkout.release()
        finally:
            self.metrics.observe("workerTaskLatency_ms", time.monotonic() - started)

    def _checkout(self, cmd: RunCommand, abort: gevent.event.Event, done: "_Statuses"
                  ) -> Union[Checkout, RunStatus]:
        if not cmd.snapshot_id:
            checkout, error = _caught(self.filer.checkout, "")  # a new empty directory: no waiting involved
            return checkout if error is None else done.failed(CHECKOUT_FAILURE, str(error))
        self.metrics.inc("workerDownloads")
        began = time.monotonic()
        job = gevent.spawn(_caught, self.filer.checkout, cmd.snapshot_id)
        gevent.wait([job, abort], count=1)
        if not job.ready():
            job.link_value(lambda g: g.value[0] and g.value[0].release())
            return done.state(RunState.ABORTED)
        self.metrics.observe("workerDownloadLatency_ms", time.monotonic() - began)
        checkout, error = job.value
        if isinstance(error, FilerError):
            return done.failed(error.exit_code, str(error))
        if error is not None:
            return done.failed(CHECKOUT_FAILURE, str(error))
        return checkout

    def _open_logs(self, run_id: str) -> _Logs:
        made: List[Output] = []
        for name, what in (("stdout", "stdout"), ("stderr", "stderr"), ("stdlog", "combined stdout/stderr")):
            try:
                made.append(self.outputs.create(f"{run_id}-{name}"))
            except OSError as e:
                for out in made:
                    out.close()
                raise FilerError(f"could not create {what}: {_go_os_error(e)}", LOG_CREATION_FAILURE) from None
        return _Logs(*made)

    def _run_in(self, checkout: Checkout, cmd: RunCommand, abort: gevent.event.Event, publish: Publish,
                done: "_Statuses", started: float) -> RunStatus:
        try:
            logs = self._open_logs(done.run_id)
        except FilerError as e:
            return done.failed(e.exit_code, str(e))
        try:
            logs.write_all(header(logs, cmd))
            try:
                proc = self.execer.exec(cmd.argv, cmd.env, checkout.path, _tee(logs.stdout, logs.stdlog),
                                        _tee(logs.stderr, logs.stdlog))
            except ExecError as e:
                return done.failed(COULD_NOT_EXEC, f"could not exec: {e}")
            publish(done.running(logs.stdout.uri, logs.stderr.uri))
            deadline = started + cmd.timeout_ms / 1000.0 if cmd.timeout_ms > 0 else None
            final = self._wait(proc, abort, deadline, cmd, logs, done)
            if final is not None:
                return final
            result = proc.result()
            if result.over_memcap:
                logs.write_all(footer(result.error))
        finally:
            logs.close()
        return self._finish(result, cmd, logs, abort, done)

    @staticmethod
    def _wait(proc: Process, abort: gevent.event.Event, deadline: Optional[float], cmd: RunCommand,
              logs: _Logs, done: "_Statuses") -> Optional[RunStatus]:
        """Wait for the process; on abort or timeout kill it and return the final status."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        gevent.wait([proc.ended, abort], timeout=timeout, count=1)
        if proc.ended.is_set():
            return None
        proc.abort()
        if abort.is_set():
            logs.write_all(footer(f"Task aborted: {command_string(cmd)}"))
            return done.state(RunState.ABORTED)
        log.info("run %s timed out: %s", done.run_id, command_string(cmd))
        logs.write_all(footer(f"Task exceeded timeout {go_duration_ms(cmd.timeout_ms)}: {command_string(cmd)}"))
        return done.state(RunState.TIMEDOUT)

    def _finish(self, result: ProcessStatus, cmd: RunCommand, logs: _Logs, abort: gevent.event.Event,
                done: "_Statuses") -> RunStatus:
        if result.state == ExecState.FAILED:
            return done.failed(POST_EXEC_FAILURE, f"error execing: {result.error}")
        if result.state != ExecState.COMPLETE:
            return done.failed(POST_EXEC_FAILURE, "unexpected exec state")
        self.metrics.inc("workerUploads")
        began = time.monotonic()
        files = {"STDOUT": logs.stdout.path, "STDERR": logs.stderr.path, "STDLOG": logs.stdlog.path}
        job = gevent.spawn(_caught, self.filer.ingest, files)
        gevent.wait([job, abort], count=1)
        if not job.ready():
            return done.state(RunState.ABORTED)
        self.metrics.observe("workerUploadLatency_ms", time.monotonic() - began)
        snap, error = job.value
        if isinstance(error, FilerError):
            return done.failed(error.exit_code, str(error))
        if error is not None:
            return done.failed(POST_EXEC_FAILURE, f"error ingesting results: {error}")
        out, err = (f"{snap}/STDOUT", f"{snap}/STDERR") if cmd.snapshot_id else (logs.stdout.uri, logs.stderr.uri)
        return done.complete(snap, result.exit_code, result.error, out, err)


def _caught(step: Callable, *args: object) -> tuple:
    """(result, None) or (None, exception): a failed filer step is a run status, not a hub traceback."""
    try:
        return step(*args), None
    except Exception as e:
        return None, e


def _go_os_error(e: OSError) -> str:
    """``open <path>: <reason>``, as Go prints a failed file creation."""
    reason = e.strerror or str(e)
    return f"open {e.filename}: {reason[:1].lower()}{reason[1:]}" if e.filename else reason


def _tee(first: Output, second: Output) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        first.write(data)
        second.write(data)
    return write


class _Statuses:
    """Builds the statuses of one run, carrying its id and tags."""

    def __init__(self, run_id: str, cmd: RunCommand):
        self.run_id = run_id
        self.tags: Dict[str, str] = {"job_id": cmd.job_id, "task_id": cmd.task_id, "tag": cmd.tag}

    def state(self, state: RunState) -> RunStatus:
        return RunStatus(state, run_id=self.run_id, **self.tags)

    def failed(self, code: int, error: str) -> RunStatus:
        return RunStatus(RunState.FAILED, run_id=self.run_id, exit_code=code, error=error, **self.tags)

    def running(self, out_uri: str, err_uri: str) -> RunStatus:
        return RunStatus(RunState.RUNNING, run_id=self.run_id, out_uri=out_uri, err_uri=err_uri, **self.tags)

    def complete(self, snapshot_id: str, exit_code: int, error: str, out_uri: str, err_uri: str) -> RunStatus:
        return RunStatus(RunState.COMPLETE, run_id=self.run_id, out_uri=out_uri, err_uri=err_uri, error=error,
                         exit_code=exit_code, snapshot_id=snapshot_id, **self.tags)

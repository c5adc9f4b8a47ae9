"""One try of one task on one worker (spec §4.6, §4.7, §6.2), run in its own greenlet.

The runner logs StartTask, sends Run, polls QueryWorker (every 5 ms at first, then every fifth of the run's age up to 250 ms,
so short tasks are seen finished within milliseconds and others within a fifth of their time), records a RUNNING StartTask the first time it sees
the run RUNNING once it has run for ``running_record_after`` (so tasks shorter than that cost one saga
record less, like the reference's tasks that finish before its first poll), and classifies the outcome.
A final outcome is logged as EndTask before the loop hears of it; a retryable one is not logged. Kills
interrupt it at any point (``abort``).
"""

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import gevent
import gevent.event

from scootpy.runs import RunCommand, RunState, RunStatus
from scootpy.sched.cluster.client import WorkerUnreachable
from scootpy.sched.config import SchedulerConfig
from scootpy.sched.definitions import TaskDefinition
from scootpy.sched.kills import USER_REQUESTED
from scootpy.sched.saga.codec import encode_run_status

log = logging.getLogger(__name__)

DEAD_LETTER_TRAILER = " -> Error(s) encountered, canceling task."
END_TASK_RETRIES = 10
MAX_TIMEOUT_MS = 2**31 - 1


@dataclass(frozen=True)
class TryResult:
    """How a try ended. ``final``: the task is done (EndTask written when ``logged``); else retry it.

    ``infra`` marks failures of the worker or the path to it rather than of the command.
    """

    status: RunStatus
    final: bool
    infra: bool = False
    logged: bool = False


@dataclass(frozen=True)
class _Outcome:
    status: RunStatus
    user_abort: bool = False
    error: Optional[str] = None
    infra: bool = False


def run_command(job_id: str, tag: str, task: TaskDefinition, default_timeout_s: float) -> Tuple[RunCommand, float]:
    """The RunCommand for one try of ``task`` and its timeout in seconds (task's own, else the default)."""
    command = task.command
    timeout_s = command.timeout_ms / 1000.0 if command.timeout_ms else default_timeout_s
    timeout_ms = max(-MAX_TIMEOUT_MS, min(MAX_TIMEOUT_MS, int(timeout_s * 1000)))
    return RunCommand(argv=list(command.argv), env=dict(command.env), snapshot_id=command.snapshot_id,
                      timeout_ms=timeout_ms, job_id=job_id, task_id=task.task_id, tag=tag), timeout_s


def empty_status_error(job_id: str, task_id: str, err: str) -> str:
    return f"Empty run status, jobId: {job_id}, taskId: {task_id}, err: {err}"


def poll_delay(config: SchedulerConfig, age: float) -> float:
    """Seconds to wait before polling a run that has been going for ``age`` seconds."""
    if age < config.poll_fast:
        return config.poll_start
    return min(max(config.poll_start, age * config.poll_fraction), config.poll_max)


class TaskRunner:
    """Drive one try; ``run()`` is the greenlet body and returns the TryResult (also given to ``on_done``).

    ``on_worker_free`` is told as soon as the worker's run is over (unless the worker failed us), before the
    result is logged, so the node can be reused while EndTask is made durable.
    """

    def __init__(self, cmd: RunCommand, saga: Any, client: Any, config: SchedulerConfig, timeout_s: float,
                 final_on_failure: bool, final_on_infra: bool, node_alive: Callable[[], bool],
                 on_done: Callable[["TaskRunner", TryResult], None],
                 on_worker_free: Optional[Callable[["TaskRunner"], None]] = None, start_data: Optional[bytes] = None):
        self.cmd = cmd
        self.saga = saga
        self.client = client
        self.config = config
        self.timeout_s = timeout_s
        self.final_on_failure = final_on_failure
        self.final_on_infra = final_on_infra
        self.node_alive = node_alive
        self.on_done = on_done
        self.on_worker_free = on_worker_free
        self.start_data = start_data
        self._abort: Optional[Tuple[bool, str]] = None
        self._wake = gevent.event.Event()
        self.run_id = ""
        self.last: Optional[RunStatus] = None
        self._writes: Optional[gevent.Greenlet] = None
        self.released = False  # set by the scheduler loop once it freed the node
        self.started = time.monotonic()  # the loop makes a runner as it assigns the try

    def abort(self, end_task: bool = True, error: str = USER_REQUESTED) -> None:
        """Ask the try to stop at its next checkpoint (a kill); it then records ABORTED."""
        if self._abort is None:
            self._abort = (end_task, error)
            self._wake.set()

    def run(self) -> TryResult:
        try:
            result = self._run()
        except Exception as e:  # a bug here must not lose the task: report it as an infrastructure failure
            log.exception("job %s task %s: runner failed", self.cmd.job_id, self.cmd.task_id)
            if self._writes is not None:
                self._writes.join()
            result = self._finish(_Outcome(RunStatus(RunState.UNKNOWN), error=str(e), infra=True))
        finally:
            self.client.close()
        self.on_done(self, result)
        return result

    def _run(self) -> TryResult:
        # StartTask is made durable while the worker already runs the command: recovery re-runs every task
        # without EndTask anyway, and EndTask waits for it, so the log order stays StartTask -> EndTask.
        self._writes = gevent.spawn(self._log, self.saga.start_task, self.start_data)
        outcome = self._run_and_wait()
        if not outcome.infra and self.on_worker_free is not None:
            self.on_worker_free(self)  # the worker is done with us: it may take work while EndTask is written
        if not self._writes.get():
            # As in the reference, a try whose StartTask cannot be logged ends without records once its
            # retries are used up (the task then shows NOT_STARTED); before that it is retried.
            return TryResult(RunStatus(RunState.FAILED, error="StartTask could not be logged"),
                             final=self.final_on_failure)
        return self._finish(outcome)

    def _log_after_previous(self, status: RunStatus) -> None:
        """Log the RUNNING StartTask once the earlier write is done, without holding up polling."""
        previous = self._writes

        def write() -> bool:
            ok = previous.get()
            return self._log(self.saga.start_task, status) and ok
        self._writes = gevent.spawn(write)

    def _aborted(self, run_id: str = "") -> Optional[_Outcome]:
        if self._abort is None:
            return None
        end_task, error = self._abort
        status = RunStatus(RunState.ABORTED, run_id=run_id, error=error, job_id=self.cmd.job_id,
                           task_id=self.cmd.task_id)
        return _Outcome(status, user_abort=end_task)

    def _call(self, method: Callable, *args: Any, timeout: Optional[float] = None) -> Any:
        """One worker RPC, bounded in time: a worker that hangs is as unreachable as one that refuses."""
        limit = timeout or self.config.rpc_timeout
        try:
            with gevent.Timeout(limit):
                return method(*args)
        except gevent.Timeout:
            raise WorkerUnreachable(self.cmd.task_id, f"no answer within {limit}s") from None

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def _run_and_wait(self) -> _Outcome:
        status = self._start()
        if isinstance(status, _Outcome):
            return status
        if status.state.is_done:
            if status.state == RunState.FAILED and not status.run_id:
                # Refused before running (e.g. the worker is busy): the command never ran, try elsewhere.
                return _Outcome(RunStatus(RunState.UNKNOWN), error=status.error or "run refused", infra=True)
            return _Outcome(status)
        self.run_id = status.run_id
        return self._poll(time.monotonic() + self.timeout_s + self.config.task_timeout_overhead)

    def _start(self):
        """Send Run, retrying RPC failures within the retry budget; an _Outcome means the try is over."""
        elapsed = 0.0
        while True:
            aborted = self._aborted()
            if aborted:
                return aborted
            try:
                status = self._call(self.client.run, self.cmd)
            except WorkerUnreachable as e:
                if (elapsed + self.config.runner_retry_interval >= self.config.runner_retry_timeout
                        or not self.node_alive()):
                    return _Outcome(RunStatus(RunState.UNKNOWN), error=str(e), infra=True)
                log.info("job %s task %s: retrying Run: %s", self.cmd.job_id, self.cmd.task_id, e)
                self._sleep(self.config.runner_retry_interval)
                elapsed += self.config.runner_retry_interval
                continue
            aborted = self._aborted()
            if aborted:
                self._abort_run(status.run_id)
                return aborted
            return status

    def _poll(self, deadline: float) -> _Outcome:
        err_elapsed, include_running = 0.0, True
        started = time.monotonic()
        while True:
            aborted = self._aborted(self.run_id)
            if aborted:
                self._abort_run(self.run_id)
                return aborted
            if time.monotonic() >= deadline:
                self._abort_run(self.run_id)
                return _Outcome(RunStatus(RunState.TIMEDOUT, run_id=self.run_id))
            try:
                runs = self._call(self.client.query).runs
            except WorkerUnreachable as e:
                err_elapsed += self.config.runner_retry_interval
                if err_elapsed >= self.config.runner_retry_timeout or not self.node_alive():
                    self._abort_run(self.run_id)
                    return _Outcome(RunStatus(RunState.UNKNOWN), error=str(e), infra=True)
                self._sleep(self.config.runner_retry_interval)
                continue
            mine = [r for r in runs if r.run_id == self.run_id]
            if not mine:
                return _Outcome(RunStatus(RunState.UNKNOWN), infra=True,
                                error=f"run {self.run_id} is unknown to the worker (restarted?)")
            status = mine[0]
            self.last = status
            if status.state.is_done:
                if status.state != RunState.COMPLETE:
                    self._abort_run(self.run_id)
                return _Outcome(status)
            if (status.state == RunState.RUNNING and include_running
                    and time.monotonic() - started >= self.config.running_record_after):
                include_running = False
                self._log_after_previous(status)
            self._sleep(poll_delay(self.config, time.monotonic() - started))

    def _abort_run(self, run_id: str) -> None:
        if not run_id:
            return
        try:
            self._call(self.client.abort, run_id, timeout=2 * self.config.rpc_timeout)
        except Exception as e:
            log.debug("job %s task %s: Abort %s: %s", self.cmd.job_id, self.cmd.task_id, run_id, e)

    def _log(self, write: Callable, status: "Optional[RunStatus] | bytes") -> bool:
        try:
            data = status if status is None or isinstance(status, bytes) else encode_run_status(status)
            write(self.cmd.task_id, data)
            return True
        except Exception as e:
            log.warning("job %s task %s: saga write failed: %s", self.cmd.job_id, self.cmd.task_id, e)
            return False

    def _finish(self, outcome: _Outcome) -> TryResult:
        """Classify the outcome (§4.6 with decision 3) and write EndTask when it is final."""
        status, state = outcome.status, outcome.status.state
        if outcome.error is None and state == RunState.COMPLETE:
            final, dead_letter = True, False
        elif outcome.user_abort or (outcome.error is None and state in (RunState.TIMEDOUT, RunState.ABORTED)):
            final, dead_letter = True, True
        elif outcome.infra:
            final = dead_letter = self.final_on_infra
        else:
            final = dead_letter = self.final_on_failure
        error = status.error
        if state == RunState.UNKNOWN:
            state, error = RunState.FAILED, empty_status_error(self.cmd.job_id, self.cmd.task_id,
                                                               outcome.error or status.error)
        if dead_letter:
            error += DEAD_LETTER_TRAILER
        status = RunStatus(state, run_id=status.run_id, out_uri=status.out_uri, err_uri=status.err_uri,
                           error=error, exit_code=status.exit_code, snapshot_id=status.snapshot_id,
                           job_id=status.job_id or self.cmd.job_id, task_id=status.task_id or self.cmd.task_id,
                           tag=status.tag)
        self.last = status
        if not final:
            log.info("job %s task %s: try failed, will retry: %s", self.cmd.job_id, self.cmd.task_id,
                     outcome.error or status.error)
            return TryResult(status, final=False, infra=outcome.infra)
        logged = self._log(self.saga.end_task, status)
        for _ in range(END_TASK_RETRIES):
            if logged:
                break
            gevent.sleep(self.config.runner_retry_interval)
            logged = self._log(self.saga.end_task, status)
        return TryResult(status, final=True, infra=outcome.infra, logged=logged)

"""The scheduler loop: one greenlet owns all job and node state; ``step()`` does the work (spec §4.1).

RPC greenlets, task runners, probes and saga writers never touch that state: they queue requests or
messages and set ``wake``. ``run()`` only waits for ``wake`` (or the tick) and calls ``step()``, so a pass
runs as soon as work or capacity appears (decision 2). Tests drive ``step()`` by hand.

Each step: add jobs (admission, then adds), apply node changes, process finished work, start EndSagas,
kill jobs, schedule tasks, update stats.
"""

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence

import gevent
import gevent.event

from scootpy.metrics import Registry
from scootpy.sched import kills, stats
from scootpy.sched.admission import BasisHistory, apply_requestor_rules, check_admission
from scootpy.sched.assign import get_task_assignments
from scootpy.sched.cluster_state import ClusterState
from scootpy.sched.config import SchedulerConfig
from scootpy.sched.definitions import Job, JobDefinition
from scootpy.sched.job_state import JobState, TaskState
from scootpy.sched.readiness import probe_until_ready
from scootpy.sched.task_runner import TaskRunner, TryResult, run_command

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 120.0
KILL_WAIT_S = 10.0


class SchedulerError(Exception):
    """A request the scheduler refused; the text is the reference's and reaches clients verbatim."""


@dataclass
class _Request:
    kind: str
    arg: Any
    result: gevent.event.AsyncResult


class Scheduler:
    """The stateful scheduler. ``worker_client(node_id)`` makes a fresh WorkerClient for each try or probe."""

    def __init__(self, config: SchedulerConfig, worker_client: Callable[[str], Any],
                 metrics: Optional[Registry] = None, probe: Optional[Callable[[Any], bool]] = None,
                 trust_new_nodes: bool = False):
        self.config = config
        self.worker_client = worker_client
        self.metrics = metrics or Registry("scheduler")
        stats.describe(self.metrics)
        self.probe = probe
        self.trust_new_nodes = trust_new_nodes or probe is None
        self.cluster = ClusterState(config.max_lost)
        self.jobs: Dict[str, JobState] = {}
        self.requestors: Dict[str, List[JobState]] = {}
        self.history = BasisHistory()
        self.throttle = -1
        self.start_data: Optional[bytes] = None  # what a StartTask without a status stores (b"" for file logs)
        self.requestors_gauged: set = set()
        self.started = time.time()
        self.wake = gevent.event.Event()
        self._requests: Deque[_Request] = deque()
        self._adds: Deque[tuple] = deque()
        self._node_updates: Deque[list] = deque()
        self._messages: Deque[Callable[[], None]] = deque()
        self._internal_kills: Deque[str] = deque()
        self._probing: Dict[str, gevent.Greenlet] = {}
        self._runners: set = set()
        self._greenlet: Optional[gevent.Greenlet] = None
        self._stopping = False

    # --- Requests from other greenlets -------------------------------------------------------------

    def _ask(self, kind: str, arg: Any) -> Any:
        request = _Request(kind, arg, gevent.event.AsyncResult())
        self._requests.append(request)
        self.wake.set()
        try:
            return request.result.get(timeout=REQUEST_TIMEOUT_S)
        except gevent.Timeout:
            raise SchedulerError(f"the scheduler did not answer within {REQUEST_TIMEOUT_S:g}s") from None

    def check_job(self, definition: JobDefinition) -> None:
        """Run RunJob's admission checks on the loop; raises SchedulerError with the reference's text."""
        self._ask("check", definition)

    def add_job(self, job: Job, saga: Any, completed: Sequence[str] = (), recovered: bool = False) -> None:
        """Hand an admitted (or recovered) job with its started saga to the loop."""
        self._adds.append((job, saga, tuple(completed), recovered))
        self.wake.set()

    def kill_job(self, job_id: str) -> None:
        """Kill a job (§3.4); returns once its runners are told and its waiting tasks are recorded ABORTED.

        For a huge job the records may take longer than ``KILL_WAIT_S``; the call then returns first and
        the writing goes on.
        """
        self._ask("kill", job_id).wait(KILL_WAIT_S)

    def offline_worker(self, node_id: str) -> None:
        """Take a healthy node out of service (§2.4); raises SchedulerError with the reference's text."""
        self._ask("offline", node_id)

    def reinstate_worker(self, node_id: str) -> None:
        """Return an offlined node to service (§2.5); raises SchedulerError with the reference's text."""
        self._ask("reinstate", node_id)

    def node_updates(self, updates: list) -> None:
        """Membership callback: a batch of NodeUpdate(kind, node_id)."""
        self._node_updates.append(list(updates))
        self.wake.set()

    def post(self, message: Callable[[], None]) -> None:
        """Run ``message`` on the loop at the next step (used by runners, probes and saga writers)."""
        self._messages.append(message)
        self.wake.set()

    def current_tasks(self) -> int:
        """Tasks of jobs in progress that are not completed (running + waiting), as GetSchedulerStatus counts."""
        return sum(j.num_tasks - j.num_completed for j in self.jobs.values())

    # --- The loop ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop in a greenlet."""
        self._greenlet = gevent.spawn(self.run)

    def stop(self) -> None:
        """Stop the loop, probes and tries in flight without recording anything (recovery resumes them)."""
        self._stopping = True
        self.wake.set()
        for greenlet in list(self._probing.values()) + list(self._runners):
            greenlet.kill(block=False)
        if self._greenlet is not None:
            self._greenlet.join(timeout=5)

    def run(self) -> None:
        """Wait for work, step, repeat; a failing step is logged and the loop goes on."""
        while not self._stopping:
            self.wake.wait(self.config.tick)
            self.wake.clear()
            if self._stopping:
                break
            try:
                self.step()
            except Exception:
                log.exception("scheduler step failed")
                gevent.sleep(0.01)

    def step(self, now: Optional[float] = None) -> None:
        """One pass: admit and add jobs, apply node changes, process results, end, kill and schedule."""
        now = time.monotonic() if now is None else now
        started = time.monotonic()
        self._answer_requests(("check",))
        self._add_jobs()
        self._update_cluster(now)
        self._process_messages()
        self._check_for_completed_jobs(now)
        self._answer_requests(("kill",))
        self._kill_internal()
        self._schedule_tasks()
        stats.update(self, time.monotonic() - started)

    def _answer_requests(self, kinds: Sequence[str]) -> None:
        keep: Deque[_Request] = deque()
        while self._requests:
            request = self._requests.popleft()
            if request.kind not in kinds:
                keep.append(request)
                continue
            try:
                getattr(self, "_handle_" + request.kind)(request)
            except Exception as e:
                log.exception("%s request failed", request.kind)
                request.result.set_exception(e)
        self._requests.extendleft(reversed(keep))

    def _handle_check(self, request: _Request) -> None:
        c = self.config
        self._answer(request, check_admission(request.arg, self.requestors, c.max_requestors,
                                              c.max_jobs_per_requestor, self.history))

    def _add_jobs(self) -> None:
        while self._adds:
            job, saga, completed, recovered = self._adds.popleft()
            if job.id in self.jobs:
                log.warning("job %s: already in progress, ignoring a second add", job.id)
                continue
            state = JobState(job, saga, completed)
            others = self.requestors.get(state.requestor, [])
            self._internal_kills.extend(apply_requestor_rules(state, others))
            self.jobs[job.id] = state
            self.requestors.setdefault(state.requestor, []).append(state)
            self.metrics.inc("schedRecoveredJobsCounter" if recovered else "schedAcceptedJobsCounter")
            log.info("job %s: added (%d tasks, %d already done%s)", job.id, state.num_tasks,
                     state.num_completed, ", recovered" if recovered else "")

    # --- Nodes -------------------------------------------------------------------------------------

    def _update_cluster(self, now: float) -> None:
        self._answer_requests(("offline", "reinstate"))
        while self._node_updates:
            for update in self._node_updates.popleft():
                if update.kind == "add":
                    if self.cluster.add(update.node_id, now, trusted=self.trust_new_nodes):
                        self._start_probe(update.node_id)
                elif update.kind == "remove":
                    self.cluster.remove(update.node_id, now)
        for node_id in self.cluster.housekeeping(now):
            probe = self._probing.pop(node_id, None)
            if probe is not None:
                probe.kill(block=False)

    def _handle_offline(self, request: _Request) -> None:
        self._answer(request, self.cluster.offline(request.arg))

    def _handle_reinstate(self, request: _Request) -> None:
        self._answer(request, self.cluster.reinstate(request.arg))

    @staticmethod
    def _answer(request: _Request, error: Optional[str]) -> None:
        if error:
            request.result.set_exception(SchedulerError(error))
        else:
            request.result.set(None)

    def _start_probe(self, node_id: str, delay: float = 0.0) -> None:
        if self.probe is None:
            self.cluster.mark_ready(node_id)
        elif node_id not in self._probing:
            self._probing[node_id] = gevent.spawn(self._probe_loop, node_id, delay)

    def _probe_loop(self, node_id: str, delay: float) -> None:
        """Probe a suspended node; the outcome reaches the loop as a message."""
        def report(ready: bool) -> None:
            self.post(lambda: self.cluster.mark_ready(node_id, ready=ready, gave_up=not ready))

        try:
            c = self.config
            probe_until_ready(node_id, self.worker_client, self.probe, c.probe_timeout, c.ready_backoff, report,
                              lambda: self._stopping, delay)
        finally:
            self.post(lambda: self._probing.pop(node_id, None))

    # --- Finished work -----------------------------------------------------------------------------

    def _process_messages(self) -> None:
        for _ in range(len(self._messages)):
            message = self._messages.popleft()
            try:
                message()
            except Exception:
                log.exception("processing a scheduler message failed")

    def _release_node(self, runner: TaskRunner, node_id: str) -> None:
        if not runner.released:
            runner.released = True
            self.cluster.task_completed(node_id)

    def _task_done(self, job: JobState, task: TaskState, node_id: str, result: TryResult) -> None:
        runner = task.runner
        if runner is None or not runner.released:
            self.cluster.task_completed(node_id)
        task.last_status = result.status
        if result.infra and self.cluster.untrust(node_id):
            log.warning("node %s: suspended after a failed try of job %s task %s", node_id, job.id, task.task_id)
            self._start_probe(node_id, self.config.ready_backoff)
        if result.final:
            job.task_completed(task.task_id)
            self.metrics.inc("schedCompletedTaskCounter" if result.logged else "schedFailedTaskCounter")
            return
        if result.infra:
            task.infra_tries += 1
        job.task_retry(task.task_id)
        self.metrics.inc("schedTaskRetriesCounter")
        if job.killed:
            self._kill_waiting(job)

    def _try_ended(self, job: JobState, task: TaskState, node_id: str, runner: TaskRunner, result: TryResult) -> None:
        """A runner's last word (from its greenlet): time the try, then hand the result to the loop."""
        stats.try_ended(self.metrics, runner, result)
        self.post(lambda: self._task_done(job, task, node_id, result))

    def _check_for_completed_jobs(self, now: float) -> None:
        for job in list(self.jobs.values()):
            if job.done and not job.ending and not job.pending_writes and now >= job.end_saga_after:
                job.ending = True
                gevent.spawn(self._end_saga, job, now)

    def _end_saga(self, job: JobState, now: float) -> None:
        try:
            job.saga.end_saga()
        except Exception as e:
            log.warning("job %s: EndSaga failed, will retry: %s", job.id, e)
            self.post(lambda: self._end_saga_failed(job, now))
            return
        self.post(lambda: self._remove_job(job))

    def _end_saga_failed(self, job: JobState, now: float) -> None:
        job.ending = False
        job.end_saga_after = now + 1.0
        self.metrics.inc("schedRetriedEndSagaCounter")

    def _remove_job(self, job: JobState) -> None:
        self.jobs.pop(job.id, None)
        others = self.requestors.get(job.requestor, [])
        if job in others:
            others.remove(job)
        if not others:
            self.requestors.pop(job.requestor, None)
        self.metrics.inc("schedCompletedJobsCounter")
        stats.job_ended(self.metrics, job)
        log.info("job %s: completed", job.id)

    # --- Kills -------------------------------------------------------------------------------------

    def _handle_kill(self, request: _Request) -> None:
        job = self.jobs.get(request.arg)
        if job is None:
            request.result.set_exception(SchedulerError(kills.not_found_text(request.arg)))
        elif job.killed:
            request.result.set_exception(SchedulerError(kills.already_killed_text(job.id)))
        else:
            written = gevent.event.AsyncResult()
            self._kill(job, written)
            request.result.set(written)

    def _kill_internal(self) -> None:
        while self._internal_kills:
            job = self.jobs.get(self._internal_kills.popleft())
            if job is not None and not job.killed:
                log.info("job %s: killed, superseded by a newer tag for its basis", job.id)
                self._kill(job, None)

    def _kill(self, job: JobState, done: Optional[gevent.event.AsyncResult]) -> None:
        job.killed = True
        for task in job.running_tasks():
            if task.runner is not None:
                task.runner.abort(True, kills.USER_REQUESTED)
        self._kill_waiting(job, done)

    def _kill_waiting(self, job: JobState, done: Optional[gevent.event.AsyncResult] = None) -> None:
        """Record every waiting task of ``job`` as killed, off the loop."""
        tasks = list(job.waiting.values())
        for task in tasks:
            task.last_status = kills.killed_status(job.id, task.task_id)
            job.task_completed(task.task_id)
        job.pending_writes += 1
        gevent.spawn(self._write_kills, job, tasks, done)

    def _write_kills(self, job: JobState, tasks: List[TaskState], done: Optional[gevent.event.AsyncResult]
                     ) -> None:
        try:
            kills.record_killed_tasks(job.id, job.saga, tasks, self.start_data)
        finally:
            self.post(lambda: setattr(job, "pending_writes", job.pending_writes - 1))
            if done is not None:
                done.set(None)

    # --- Scheduling --------------------------------------------------------------------------------

    def _schedule_tasks(self) -> None:
        if not self.jobs or self.cluster.num_free() == 0:
            return
        cluster = self.cluster
        assignments, groups = get_task_assignments(list(self.jobs.values()), self.requestors, cluster.groups,
                                                   cluster.usable, len(cluster.healthy), cluster.num_free())
        if groups is None:
            return
        self.cluster.set_groups(groups)
        for assignment in assignments:
            self._start_try(self.jobs[assignment.task.job_id], assignment.task, assignment.node_id)

    def _start_try(self, job: JobState, task: TaskState, node_id: str) -> None:
        c = self.config
        cmd, timeout_s = run_command(job.id, job.tag, task.definition, c.default_task_timeout)
        try:
            client = self.worker_client(node_id)
        except Exception as e:
            log.warning("node %s: cannot make a worker client, suspending it: %s", node_id, e)
            self.cluster.unplace(node_id)
            self.cluster.untrust(node_id)
            self.cluster.mark_ready(node_id, ready=False, gave_up=True)
            return
        runner = TaskRunner(
            cmd, job.saga, client, c, timeout_s,
            final_on_failure=task.times_tried >= c.max_retries,
            final_on_infra=task.infra_tries >= max(c.max_retries, c.infra_retries),
            node_alive=lambda: self.cluster.usable(node_id),
            on_done=lambda r, result: self._try_ended(job, task, node_id, r, result),
            on_worker_free=lambda r: self.post(lambda: self._release_node(r, node_id)), start_data=self.start_data)
        task.times_tried += 1
        self.cluster.task_scheduled(node_id, job.id, task.task_id, cmd.snapshot_id)
        job.task_started(task.task_id, node_id, runner)
        self.metrics.inc("scheduledTasksCounter")
        greenlet = gevent.spawn(runner.run)
        self._runners.add(greenlet)
        greenlet.link(self._runners.discard)

    # --- Read-only views ---------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Jobs, tasks and workers as plain data for the status page (read-only)."""
        return stats.snapshot(self)

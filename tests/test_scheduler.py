"""The scheduler loop with a memory saga log and scripted in-process workers (spec §3, §4, §8)."""

import time
from typing import Dict, List

import gevent
import gevent.event
import pytest

from scootpy.runs import RunState, RunStatus
from scootpy.sched.cluster import NodeUpdate, WorkerStatus, WorkerUnreachable, probe_ready
from scootpy.sched.config import SchedulerConfig
from scootpy.sched.definitions import Command, Job, JobDefinition, TaskDefinition, job_to_thrift
from scootpy.sched.saga.codec import decode_run_status, encode_job
from scootpy.sched.saga.log import MessageType
from scootpy.sched.saga.memory import MemorySagaLog
from scootpy.sched.saga.saga import Saga
from scootpy.sched.scheduler import Scheduler, SchedulerError
from scootpy.sched.task_runner import DEAD_LETTER_TRAILER

FAST = SchedulerConfig(runner_retry_timeout=0.05, runner_retry_interval=0.01, ready_backoff=0.02, tick=0.02)


class Worker:
    """A scripted worker: ``mode`` is complete | fail | timeout | pause | unreachable | vanish | uninitialized."""

    def __init__(self, node_id: str, mode: str = "complete", exit_code: int = 0):
        self.node_id, self.mode, self.exit_code = node_id, mode, exit_code
        self.polling_period = 0.25
        self.runs: Dict[str, RunStatus] = {}
        self.calls: List[str] = []
        self.aborted: List[str] = []
        self.abort_gate = gevent.event.Event()
        self.abort_gate.set()

    def client(self, _node_id: str) -> "Worker":
        return self

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.mode == "unreachable":
            raise WorkerUnreachable(self.node_id, "connection refused")

    def run(self, cmd) -> RunStatus:
        self._check("run:" + cmd.task_id)
        run_id = str(len(self.runs))
        if self.mode == "busy":
            return RunStatus(RunState.FAILED, run_id="", error="No resources available. Please try later.")
        final = {"complete": RunState.COMPLETE, "fail": RunState.FAILED, "timeout": RunState.TIMEDOUT}
        state = final.get(self.mode, RunState.RUNNING)
        self.runs[run_id] = RunStatus(state, run_id=run_id, exit_code=self.exit_code,
                                      error="boom" if state == RunState.FAILED else "", task_id=cmd.task_id)
        return RunStatus(RunState.PENDING, run_id=run_id)

    def query(self) -> WorkerStatus:
        self._check("query")
        if self.mode == "hang":
            gevent.sleep(3600)
        if self.mode == "uninitialized":
            return WorkerStatus(initialized=False)
        if self.mode == "broken":
            return WorkerStatus(initialized=False, error="could not set up the repo")
        return WorkerStatus(runs=[] if self.mode == "vanish" else list(self.runs.values()), initialized=True)

    def abort(self, run_id: str) -> RunStatus:
        self._check("abort")
        self.abort_gate.wait()
        self.aborted.append(run_id)
        return self.runs.get(run_id, RunStatus(RunState.ABORTED, run_id=run_id))

    def close(self) -> None:
        pass


class Harness:
    def __init__(self, workers: List[Worker], config: SchedulerConfig = FAST, probe=None):
        self.log = MemorySagaLog()
        self.workers = {w.node_id: w for w in workers}
        self.sched = Scheduler(config, lambda n: self.workers[n], probe=probe)
        self.sched.node_updates([NodeUpdate("add", n) for n in self.workers])
        self.sched.start()

    def submit(self, tasks, job_id=None, **fields) -> str:
        definition = JobDefinition(tasks=tuple(TaskDefinition(t, Command(("true",), {}, timeout_ms=ms))
                                               for t, ms in tasks), **fields)
        self.sched.check_job(definition)
        job_id = job_id or f"job{len(self.log.get_active_sagas())}"
        job = Job(job_id, JobDefinition(**{**definition.__dict__, "tag": definition.tag or job_id}))
        self.sched.add_job(job, Saga.start(self.log, job_id, encode_job(job_to_thrift(job))))
        self.wait(lambda: job_id in self.sched.jobs or self.ended(job_id))
        return job_id

    def wait(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached"
            gevent.sleep(0.005)

    def wait_done(self, job_id, timeout=10.0):
        self.wait(lambda: self.ended(job_id), timeout)

    def ended(self, job_id) -> bool:
        return any(m.type == MessageType.END_SAGA for m in self.log.get_messages(job_id))

    def end_tasks(self, job_id) -> Dict[str, RunStatus]:
        return {m.task_id: decode_run_status(m.data) for m in self.log.get_messages(job_id)
                if m.type == MessageType.END_TASK}

    def close(self):
        self.sched.stop()


@pytest.fixture
def make():
    made = []

    def factory(*args, **kwargs):
        made.append(Harness(*args, **kwargs))
        return made[-1]
    yield factory
    for h in made:
        h.close()


def tasks(n, timeout_ms=0):
    return [(f"t{i}", timeout_ms) for i in range(n)]


def test_job_runs_every_task_and_logs_in_the_reference_order(make):
    h = make([Worker("n0"), Worker("n1")])
    job_id = h.submit(tasks(5))
    h.wait_done(job_id)
    messages = h.log.get_messages(job_id)
    assert [m.type for m in messages[:1]] == [MessageType.START_SAGA]
    assert messages[-1].type == MessageType.END_SAGA
    for i in range(5):
        mine = [m for m in messages if m.task_id == f"t{i}"]
        assert [m.type for m in mine] == [MessageType.START_TASK, MessageType.END_TASK]
        assert mine[0].data is None
    assert all(s.state == RunState.COMPLETE for s in h.end_tasks(job_id).values())
    assert job_id not in h.sched.jobs and h.sched.current_tasks() == 0


def test_nonzero_exit_is_complete_and_never_retried(make):
    w = Worker("n0", exit_code=3)
    h = make([w], SchedulerConfig(**{**FAST.__dict__, "max_retries": 3}))
    job_id = h.submit(tasks(1))
    h.wait_done(job_id)
    assert h.end_tasks(job_id)["t0"].exit_code == 3
    assert w.calls.count("run:t0") == 1


def test_worker_failure_retried_max_retries_times_then_dead_lettered(make):
    w = Worker("n0", mode="fail")
    h = make([w], SchedulerConfig(**{**FAST.__dict__, "max_retries": 3}))
    job_id = h.submit(tasks(1))
    h.wait_done(job_id)
    assert w.calls.count("run:t0") == 4
    status = h.end_tasks(job_id)["t0"]
    assert status.state == RunState.FAILED and status.error == "boom" + DEAD_LETTER_TRAILER


def test_timedout_is_final_even_with_retries_left(make):
    w = Worker("n0", mode="timeout")
    h = make([w], SchedulerConfig(**{**FAST.__dict__, "max_retries": 3}))
    job_id = h.submit(tasks(1))
    h.wait_done(job_id)
    assert w.calls.count("run:t0") == 1
    status = h.end_tasks(job_id)["t0"]
    assert status.state == RunState.TIMEDOUT and status.error == DEAD_LETTER_TRAILER
    assert w.aborted == [status.run_id]


def test_unreachable_worker_is_suspended_and_the_task_reruns_elsewhere(make):
    bad, good = Worker("n0", mode="unreachable"), Worker("n1")
    h = make([bad, good], probe=probe_ready)
    h.wait(lambda: "n1" in h.sched.cluster.healthy)
    bad.mode = "complete"
    h.wait(lambda: "n0" in h.sched.cluster.healthy)
    bad.mode = "unreachable"
    job_id = h.submit(tasks(2))
    h.wait_done(job_id)
    assert all(s.state == RunState.COMPLETE for s in h.end_tasks(job_id).values())
    assert "n0" in h.sched.cluster.suspended
    assert good.calls.count("run:t0") + good.calls.count("run:t1") == 2


def test_busy_worker_refusal_sends_the_task_elsewhere(make):
    busy, good = Worker("n0", mode="busy"), Worker("n1", mode="pause")
    h = make([busy, good], SchedulerConfig(**{**FAST.__dict__, "ready_backoff": 5.0}), probe=probe_ready)
    h.wait(lambda: len(h.sched.cluster.healthy) == 2)
    job_id = h.submit(tasks(2))
    h.wait(lambda: "run:t0" in good.calls or "run:t1" in good.calls)
    h.wait(lambda: "n0" in h.sched.cluster.suspended)
    good.mode = "complete"
    for run_id, status in list(good.runs.items()):
        good.runs[run_id] = RunStatus(RunState.COMPLETE, run_id=run_id, task_id=status.task_id)
    h.wait_done(job_id)
    assert {s.state for s in h.end_tasks(job_id).values()} == {RunState.COMPLETE}
    assert [c for c in busy.calls if c.startswith("run:")] == ["run:t0"] or \
        [c for c in busy.calls if c.startswith("run:")] == ["run:t1"]


def test_infrastructure_failures_end_dead_lettered_after_the_retry_budget(make):
    bad = Worker("n0", mode="unreachable")
    h = make([bad], SchedulerConfig(**{**FAST.__dict__, "infra_retries": 1, "runner_retry_timeout": 0.01}))
    job_id = h.submit(tasks(1))
    h.wait_done(job_id)
    assert bad.calls.count("run:t0") == 2
    status = h.end_tasks(job_id)["t0"]
    assert status.state == RunState.FAILED
    assert status.error.startswith(f"Empty run status, jobId: {job_id}, taskId: t0, err: ")
    assert status.error.endswith(DEAD_LETTER_TRAILER)


def test_worker_that_hangs_mid_task_is_given_up_and_the_task_rerun(make):
    flaky, good = Worker("n0", mode="pause"), Worker("n1")
    config = SchedulerConfig(**{**FAST.__dict__, "rpc_timeout": 0.05})
    h = make([flaky, good], config)
    h.wait(lambda: len(h.sched.cluster.healthy) == 2)
    h.sched.offline_worker("n1")
    job_id = h.submit(tasks(1))
    h.wait(lambda: "query" in flaky.calls)
    flaky.mode = "hang"
    h.sched.reinstate_worker("n1")
    h.wait_done(job_id)
    assert h.end_tasks(job_id)["t0"].state == RunState.COMPLETE
    assert "run:t0" in good.calls


def test_run_missing_from_a_restarted_worker_is_rerun(make):
    lost, good = Worker("n0", mode="vanish"), Worker("n1")
    h = make([lost, good])
    job_id = h.submit(tasks(1))
    h.wait_done(job_id)
    assert h.end_tasks(job_id)["t0"].state == RunState.COMPLETE
    assert "run:t0" in good.calls


def test_scheduler_deadline_records_timedout_and_aborts(make):
    w = Worker("n0", mode="pause")
    h = make([w], SchedulerConfig(**{**FAST.__dict__, "task_timeout_overhead": 0.05}))
    job_id = h.submit(tasks(1, timeout_ms=50))
    h.wait_done(job_id)
    status = h.end_tasks(job_id)["t0"]
    assert status.state == RunState.TIMEDOUT and status.run_id == "0"
    assert w.aborted == ["0"]


def test_running_status_is_logged_once_as_a_second_start_task(make):
    w = Worker("n0", mode="pause")
    h = make([w])
    job_id = h.submit(tasks(1))
    h.wait(lambda: len([m for m in h.log.get_messages(job_id) if m.type == MessageType.START_TASK]) == 2)
    second = [m for m in h.log.get_messages(job_id) if m.type == MessageType.START_TASK][1]
    assert decode_run_status(second.data).state == RunState.RUNNING
    h.sched.kill_job(job_id)
    h.wait_done(job_id)


def test_kill_aborts_running_and_waiting_tasks(make):
    w = Worker("n0", mode="pause")
    h = make([w])
    job_id = h.submit(tasks(3))
    h.wait(lambda: "query" in w.calls)
    w.abort_gate.clear()
    h.sched.kill_job(job_id)
    ends = h.end_tasks(job_id)
    assert ends["t1"].error == "UserRequested" and ends["t1"].run_id == ""
    assert "t0" not in ends
    with pytest.raises(SchedulerError, match=f"Job Id {job_id} was already killed, request ignored"):
        h.sched.kill_job(job_id)
    w.abort_gate.set()
    h.wait_done(job_id)
    ends = h.end_tasks(job_id)
    assert {s.state for s in ends.values()} == {RunState.ABORTED}
    assert ends["t0"].error == "UserRequested" + DEAD_LETTER_TRAILER and ends["t0"].run_id == "0"
    assert w.aborted == ["0"]
    with pytest.raises(SchedulerError, match="Cannot kill Job Id .*, not found. \\(This error can be ignored"):
        h.sched.kill_job(job_id)


def test_admission_texts_in_the_reference_order(make):
    h = make([Worker("n0", mode="pause")], SchedulerConfig(**{**FAST.__dict__, "max_requestors": 2,
                                                               "max_jobs_per_requestor": 2}))
    h.submit(tasks(1), requestor="a")
    h.submit(tasks(1), requestor="b")
    with pytest.raises(SchedulerError, match=r"^Exceeds max number of requestors: c \(2\)$"):
        h.submit(tasks(1), requestor="c")
    h.submit(tasks(1), requestor="a")
    with pytest.raises(SchedulerError, match=r"^Exceeds max jobs per requestor: a \(2\)$"):
        h.submit(tasks(1), requestor="a")
    with pytest.raises(SchedulerError, match=r"^Invalid priority 3, must be between 0-2 inclusive$"):
        h.submit(tasks(1), requestor="b", priority=3)
    with pytest.raises(SchedulerError, match=r"^Invalid dup taskID t0$"):
        h.submit([("t0", 0), ("t1", 0), ("t0", 0)], requestor="b")


def test_basis_history_expires_old_tags_and_kills_superseded_jobs(make):
    w = Worker("n0", mode="pause")
    h = make([w])
    first = h.submit(tasks(2), requestor="r", basis="B", tag="T1")
    h.wait(lambda: "run:t0" in w.calls)
    h.submit(tasks(1), requestor="r", basis="B", tag="T2")
    with pytest.raises(SchedulerError, match="^Expired tag=T1 for basis=B. Expected either tag=T2 or new tag.$"):
        h.submit(tasks(1), requestor="r", basis="B", tag="T1")
    h.wait_done(first)
    assert {s.state for s in h.end_tasks(first).values()} == {RunState.ABORTED}


def test_offline_and_reinstate(make):
    n0, n1 = Worker("n0"), Worker("n1")
    h = make([n0, n1])
    h.wait(lambda: len(h.sched.cluster.healthy) == 2)
    h.sched.offline_worker("n0")
    with pytest.raises(SchedulerError, match="^Node n0 was not present in nodes. It can't be offlined.$"):
        h.sched.offline_worker("n0")
    with pytest.raises(SchedulerError, match="^Node bogus was not present in nodes. It can't be offlined.$"):
        h.sched.offline_worker("bogus")
    job_id = h.submit(tasks(4))
    h.wait_done(job_id)
    assert not [c for c in n0.calls if c.startswith("run:")]
    h.sched.reinstate_worker("n0")
    with pytest.raises(SchedulerError, match="^Node n0 was not present in offlinedNodes. It can't be reinstated.$"):
        h.sched.reinstate_worker("n0")
    assert "n0" in h.sched.cluster.healthy


def test_readiness_probe_keeps_uninitialized_workers_suspended(make):
    sleepy, ready = Worker("n0", mode="uninitialized"), Worker("n1")
    h = make([sleepy, ready], probe=probe_ready)
    job_id = h.submit(tasks(3))
    h.wait_done(job_id)
    assert "n0" in h.sched.cluster.suspended and "n1" in h.sched.cluster.healthy
    assert not [c for c in sleepy.calls if c.startswith("run:")]


def test_removed_node_is_forgotten_after_the_lost_grace(make):
    h = make([Worker("n0")], SchedulerConfig(**{**FAST.__dict__, "max_lost": 0.05}))
    h.wait(lambda: "n0" in h.sched.cluster.healthy)
    h.sched.node_updates([NodeUpdate("remove", "n0")])
    h.wait(lambda: "n0" in h.sched.cluster.suspended)
    h.wait(lambda: h.sched.cluster.node("n0") is None)


def test_recovered_job_reruns_only_tasks_without_end_task(make):
    log = MemorySagaLog()
    job = Job("rec", JobDefinition(tasks=tuple(TaskDefinition(t, Command(("true",), {})) for t in "abc"), tag="rec"))
    saga = Saga.start(log, "rec", encode_job(job_to_thrift(job)))
    saga.start_task("a")
    saga.end_task("a", b"")
    saga.start_task("b")
    w = Worker("n0")
    h = make([w])
    h.log = log
    h.sched.add_job(job, Saga.resume(log, saga.state), completed=["a"], recovered=True)
    h.wait_done("rec")
    assert "run:a" not in w.calls and {"run:b", "run:c"} <= set(w.calls)


def test_snapshot_lists_jobs_tasks_and_workers(make):
    h = make([Worker("n0", mode="pause")])
    job_id = h.submit(tasks(2))
    h.wait(lambda: h.sched.jobs.get(job_id) is not None and h.sched.jobs[job_id].num_running == 1)
    snap = h.sched.snapshot()
    assert snap["scheduler"]["current_tasks"] == 2 and snap["scheduler"]["max_tasks"] == -1
    job = snap["jobs"][0]
    assert job["id"] == job_id and job["tasks_total"] == 2 and job["tasks_running"] == 1
    assert {t["state"] for t in job["tasks"]} == {"RUNNING", "NOT_STARTED"}
    assert snap["workers"] == [{"id": "n0", "state": "healthy", "task": f"{job_id}/t0"}]


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_live_status_equals_status_read_from_the_log(make, tmp_path, kind):
    from scootpy.sched.api.get_status import get_status
    from scootpy.sched.job_status import job_status_from_log
    from scootpy.sched.saga.file import FileSagaLog

    h = make([Worker("n0", mode="pause"), Worker("n1", mode="pause")])
    if kind == "file":
        h.log = FileSagaLog(str(tmp_path / "sagas"))
        h.sched.start_data = b""
    job_id = h.submit(tasks(4))
    h.wait(lambda: len([m for m in h.log.get_messages(job_id) if m.type == MessageType.START_TASK]) == 4)
    gevent.sleep(0.05)
    live = get_status(h.sched, h.log, job_id)
    assert h.sched.jobs[job_id].status_cache  # answered from the live state
    assert live == job_status_from_log(h.log, job_id)
    assert live.taskStatus and live.taskData
    h.sched.kill_job(job_id)
    h.wait_done(job_id)
    assert get_status(h.sched, h.log, job_id) == job_status_from_log(h.log, job_id)


def test_per_requestor_gauges_follow_the_reference_names(make):
    h = make([Worker("n0", mode="pause")])
    job_id = h.submit(tasks(2), requestor="team/a")
    h.wait(lambda: h.sched.jobs[job_id].num_running == 1)
    gevent.sleep(0.05)
    stats = __import__("json").loads(h.sched.metrics.to_json())
    assert stats["scheduler/schedNumRunningTasksGauge_team_SLASH_a"] == 1
    assert stats["scheduler/schedNumWaitingTasksGauge_team_SLASH_a"] == 1
    assert stats["scheduler/schedNumRunningJobsGauge_team_SLASH_a"] == 1
    h.sched.kill_job(job_id)
    h.wait_done(job_id)
    h.wait(lambda: __import__("json").loads(h.sched.metrics.to_json())[
        "scheduler/schedNumRunningTasksGauge_team_SLASH_a"] == 0)


def test_node_without_a_client_is_suspended_and_the_task_runs_elsewhere(make):
    good = Worker("n1")
    h = make([Worker("n0"), good])

    def clients(node_id):
        if node_id == "n0":
            raise ValueError("no client for n0")
        return good
    h.sched.worker_client = clients
    h.wait(lambda: len(h.sched.cluster.healthy) == 2)
    job_id = h.submit(tasks(3))
    h.wait_done(job_id)
    assert "n0" in h.sched.cluster.suspended and h.sched.cluster.num_running == 0
    assert "n0" in h.sched.cluster.groups[""].idle


def test_task_on_an_offlined_node_finishes_and_is_recorded_normally(make):
    w = Worker("n0", mode="pause")
    h = make([w])
    h.wait(lambda: "n0" in h.sched.cluster.healthy)
    job_id = h.submit(tasks(1))
    h.wait(lambda: "query" in w.calls)
    h.sched.offline_worker("n0")
    w.runs["0"] = RunStatus(RunState.COMPLETE, run_id="0", exit_code=7, task_id="t0")
    h.wait_done(job_id)
    assert h.end_tasks(job_id)["t0"].exit_code == 7
    assert h.sched.cluster.num_running == 0 and "n0" in h.sched.cluster.offlined


def test_lost_node_mid_task_fails_fast_and_the_task_reruns_elsewhere(make):
    lost, good = Worker("n0", mode="pause"), Worker("n1")
    config = SchedulerConfig(**{**FAST.__dict__, "runner_retry_timeout": 60.0, "runner_retry_interval": 0.01})
    h = make([lost, good], config)
    h.wait(lambda: len(h.sched.cluster.healthy) == 2)
    h.sched.offline_worker("n1")
    job_id = h.submit(tasks(1))
    h.wait(lambda: "query" in lost.calls)
    lost.mode = "unreachable"
    h.sched.node_updates([NodeUpdate("remove", "n0")])
    h.sched.reinstate_worker("n1")
    h.wait_done(job_id, timeout=5)
    assert h.end_tasks(job_id)["t0"].state == RunState.COMPLETE and "run:t0" in good.calls


def test_worker_reporting_an_init_error_is_given_up_for_good(make):
    broken, good = Worker("n0", mode="broken"), Worker("n1")
    h = make([broken, good], probe=probe_ready)
    h.wait(lambda: h.sched.cluster.suspended.get("n0") is not None and h.sched.cluster.suspended["n0"].gave_up)
    h.wait(lambda: "n0" not in h.sched._probing)
    queries = broken.calls.count("query")
    gevent.sleep(0.1)
    assert broken.calls.count("query") == queries
    assert h.sched.snapshot()["workers"][0] == {"id": "n0", "state": "suspended", "task": ""}


def test_poll_delay_is_fast_at_first_then_a_fraction_of_the_run_age_up_to_the_cap():
    from scootpy.sched.task_runner import poll_delay

    config = SchedulerConfig()
    assert poll_delay(config, 0.0) == poll_delay(config, 0.029) == config.poll_start
    assert poll_delay(config, 0.1) == pytest.approx(0.1 * config.poll_fraction)
    assert poll_delay(config, 0.5) == pytest.approx(0.5 * config.poll_fraction)
    assert poll_delay(config, 30.0) == config.poll_max
    ages = [i / 1000 for i in range(30, 3000)]
    assert all(a <= b for a, b in zip(map(lambda x: poll_delay(config, x), ages),
                                      map(lambda x: poll_delay(config, x), ages[1:]))), "never shrinks"


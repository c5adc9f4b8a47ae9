"""SIGKILL of real workers during a 200-task job: the scheduler (static cluster of five real ``workerserver``
processes, file saga log) re-runs the tries lost with the killed workers on the survivors, every task ends
COMPLETED with the command's own result, and the saga log holds exactly one EndTask per task. A killed
worker started again on its address is probed and used again."""

import os
import random
import signal
import time
from collections import Counter

import gevent
import pytest

from scootpy.idl import scoot
from scootpy.runs import RunState
from scootpy.sched.saga.codec import decode_run_status
from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.log import MessageType
from tests.hardening_helpers import job_of, start_scheduler, start_workers, wait_job
from tests.procs import wait_port
from tests.test_worker_support import WorkerProc

pytestmark = pytest.mark.timeout(150)

TASKS = 200
WORKERS = 5
KILLS = 2
SAGA_DIR = ".scootdata/filesagalog"


def chaos_config(addrs):
    return {"Cluster": {"Type": "static", "Workers": addrs},
            "Workers": {"Type": "rpc", "PollingPeriod": "50ms"},
            "SagaLog": {"Type": "file", "Directory": SAGA_DIR},
            "SchedulerConfig": {"InfraRetriesPerTask": 4, "RunnerRetryTimeout": "1s",
                                "RunnerRetryInterval": "100ms", "ReadyFnBackoff": "500ms",
                                "WorkerRpcTimeout": "5s"}}


def test_sigkill_of_workers_during_a_200_task_job(procs, tmp_path):
    seed = int(os.environ.get("HARDENING_SEED") or int.from_bytes(os.urandom(4), "big"))
    print(f"\nchaos seed {seed} (replay with HARDENING_SEED={seed})")
    rng = random.Random(seed)
    for i in range(WORKERS):
        (tmp_path / f"w{i}").mkdir()
    starters = [gevent.spawn(start_workers, procs, tmp_path / f"w{i}", 1) for i in range(WORKERS)]
    workers = [w for g in gevent.joinall(starters, raise_error=True) for w in g.value]
    by_http = {w.http_addr: w for w in workers}
    sched = start_scheduler(procs, tmp_path, chaos_config([w.addr for w in workers]))
    victims = rng.sample(workers, KILLS)
    kill_at = sorted(rng.uniform(0.1, 0.6) for _ in range(KILLS))  # fractions of the tasks done
    killed = []

    def maybe_kill(status):
        done = sum(1 for s in status.taskStatus.values() if s == scoot.Status.COMPLETED)
        while len(killed) < KILLS and done >= kill_at[len(killed)] * TASKS:
            victim = victims[len(killed)]
            os.kill(victim.proc.pid, signal.SIGKILL)
            killed.append((victim.addr, done))

    argvs = [["sh", "-c", f"sleep 0.0{rng.randint(1, 5)}; echo task {i}"] for i in range(TASKS)]
    started = time.monotonic()
    with sched.client() as client:
        job_id = client.RunJob(job_of(argvs, requestor="chaos")).id
        status = wait_job(client, job_id, timeout=120, on_poll=maybe_kill, interval=0.02)
    elapsed = time.monotonic() - started
    assert len(killed) == KILLS, f"the job finished before every kill: {killed}"
    assert all(victim.proc.wait(5) == -signal.SIGKILL for victim in victims)
    assert set(status.taskStatus.values()) == {scoot.Status.COMPLETED}
    assert len(status.taskData) == TASKS
    ran_on = Counter()
    for task_id, data in status.taskData.items():
        assert (data.status, data.exitCode) == (scoot.RunStatusState.COMPLETE, 0), (task_id, data)
        ran_on[data.outUri.split("/")[2]] += 1
    survivors = {w.http_addr for w in workers} - {v.http_addr for v in victims}
    assert set(ran_on) <= set(by_http) and survivors <= set(ran_on)
    with sched.client() as client:
        assert client.GetSchedulerStatus().currentTasks == 0
    assert sched.proc.poll() is None
    log = sched.log.read_text()
    retried = sum(log.count(f"try failed, will retry: worker {addr}") for addr, _ in killed)
    assert retried >= 1, "no try was lost with a killed worker"
    assert "Traceback" not in log and "level=error" not in log
    check_saga(tmp_path, job_id, set(status.taskData))
    print(f"\nchaos (seed {seed}): {TASKS} tasks on {WORKERS} workers, SIGKILLed {killed} "
          f"(address, tasks done), {retried} tries lost and re-run, all COMPLETE exit 0 in {elapsed:.1f}s "
          f"({TASKS / elapsed:.0f} tasks/s); "
          f"tasks per worker HTTP address {dict(ran_on)}")


def check_saga(cwd, job_id: str, task_ids: set) -> None:
    """The job's saga: StartSaga first, EndSaga last, and per task one EndTask (COMPLETE, exit 0) after its
    StartTasks (one or more: a lost try leaves its StartTask behind)."""
    messages = FileSagaLog(SAGA_DIR, cwd=str(cwd)).get_messages(job_id)  # data paths are relative to cwd
    assert messages[0].type == MessageType.START_SAGA and messages[-1].type == MessageType.END_SAGA
    ended = {}
    for m in messages[1:-1]:
        assert m.task_id in task_ids and m.task_id not in ended, m
        if m.type == MessageType.END_TASK:
            ended[m.task_id] = decode_run_status(m.data)
        else:
            assert m.type == MessageType.START_TASK, m
    assert set(ended) == task_ids
    assert {(s.state, s.exit_code) for s in ended.values()} == {(RunState.COMPLETE, 0)}


def restart(procs, w: WorkerProc) -> WorkerProc:
    """Run a SIGKILLed worker's command line again: same addresses, same store, a fresh log."""
    log = w.log.with_name(f"{w.log.stem}-restarted.log")
    with open(log, "wb") as err:
        proc = procs.start(list(w.proc.args), env={"TMPDIR": str(w.store.parent / "tmp")}, stderr=err)
    wait_port(w.http, proc=proc)
    wait_port(w.thrift, proc=proc)
    return WorkerProc(proc, w.thrift, w.http, w.store, log)


def test_a_killed_worker_restarted_on_its_address_gets_work_again(procs, tmp_path):
    workers = start_workers(procs, tmp_path, 3)
    sched = start_scheduler(procs, tmp_path, chaos_config([w.addr for w in workers]))
    victim, state = workers[0], {}

    def kill_then_restart(status):
        done = sum(1 for s in status.taskStatus.values() if s == scoot.Status.COMPLETED)
        if "killed" not in state and done >= 20:
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.proc.wait(5)
            state["killed"] = done
        elif "killed" in state and "back" not in state and f"node {victim.addr}: suspended" in sched.log.read_text():
            state["back"] = restart(procs, victim)
            state["back_at"] = done

    tasks = 150
    with sched.client() as client:
        job_id = client.RunJob(job_of([["sh", "-c", "sleep 0.05"]] * tasks, requestor="rejoin")).id
        status = wait_job(client, job_id, timeout=120, on_poll=kill_then_restart, interval=0.02)
    assert "back" in state, f"the job ended before the worker was restarted: {state}"
    assert {(d.status, d.exitCode) for d in status.taskData.values()} == {(scoot.RunStatusState.COMPLETE, 0)}
    runs_after = state["back"].log.read_text().count("Run argv=")
    print(f"\nrejoin: worker {victim.addr} SIGKILLed after {state['killed']} of {tasks} tasks, restarted after "
          f"{state['back_at']}, then ran {runs_after} tasks")
    assert runs_after >= 1, "the restarted worker was never used again"
    assert f"node {victim.addr}: healthy" in sched.log.read_text()
    check_saga(tmp_path, job_id, set(status.taskData))

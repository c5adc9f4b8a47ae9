"""Scheduler gauges under the reference's stat names (spec §1.4), Prometheus-only state gauges and latency
histograms, and the read-only snapshot for status pages."""

import time
from typing import Any, Dict, List

from scootpy.metrics import Registry

_PROMETHEUS_ONLY = (
    ("jobs", "Jobs in progress by state: waiting (no task started), running, ending (EndSaga pending)"),
    ("tasks", "Tasks of jobs in progress by state: waiting, running, completed"),
    ("task_queue_depth", "Tasks waiting for a worker"),
    ("workers", "Known workers by state: healthy, suspended (not lost), lost, offlined"),
    ("task_try_duration_seconds", "Time from the start of a task try to its end, by the try's state and finality"),
    ("job_duration_seconds", "Time from a job's admission (or recovery) to its EndSaga"),
)

_REQUESTOR_GAUGES = ("schedNumRunningJobsGauge", "schedWaitingJobsGauge", "schedNumRunningTasksGauge",
                     "schedNumWaitingTasksGauge")


def update(scheduler: Any, step_seconds: float) -> None:
    """Refresh the gauges after a step."""
    m, cluster, jobs = scheduler.metrics, scheduler.cluster, list(scheduler.jobs.values())
    running = sum(j.num_running for j in jobs)
    outstanding = sum(j.num_tasks - j.num_completed for j in jobs)
    lost = sum(1 for n in cluster.suspended.values() if n.time_lost is not None)
    m.set("schedAcceptedJobsGauge", len(jobs))
    m.set("schedInProgressTasksGauge", outstanding)
    m.set("schedNumRunningTasksGauge", running)
    m.set("schedNumWaitingTasksGauge", outstanding - running)
    m.set("schedNumRunningJobsGauge", sum(1 for j in jobs if j.num_running or j.num_completed))
    m.set("schedWaitingJobsGauge", sum(1 for j in jobs if not j.num_running and not j.num_completed))
    m.set("availableNodes", len(cluster.healthy))
    m.set("freeNodes", cluster.num_free())
    m.set("runningNodes", cluster.num_running)
    m.set("lostNodes", lost)
    m.set("suspendedNodes", len(cluster.suspended))
    m.set("offlinedNodes", len(cluster.offlined))
    m.set("schedUptimeGauge_ms", int((time.time() - scheduler.started) * 1000))
    m.set("schedStartGauge", int(scheduler.started))
    m.observe("schedStepLatency_ms", step_seconds)
    _requestor_gauges(scheduler)
    _state_gauges(m, cluster, jobs, lost)


def describe(metrics: Registry) -> None:
    """Declare the Prometheus-only families (kept out of the reference's metrics.json)."""
    for name, text in _PROMETHEUS_ONLY:
        metrics.describe(name, text, in_json=False)


def _state_gauges(m: Registry, cluster: Any, jobs: List[Any], lost: int) -> None:
    """Jobs, tasks and workers by state, as labelled gauges."""
    job_states = {"waiting": 0, "running": 0, "ending": 0}
    waiting = running = completed = 0
    for job in jobs:
        started = job.num_running or job.num_completed
        job_states["ending" if job.done else "running" if started else "waiting"] += 1
        waiting += len(job.waiting)
        running += job.num_running
        completed += job.num_completed
    for state, count in job_states.items():
        m.set("jobs", count, state=state)
    for state, count in (("waiting", waiting), ("running", running), ("completed", completed)):
        m.set("tasks", count, state=state)
    m.set("task_queue_depth", waiting)
    for state, count in (("healthy", len(cluster.healthy)), ("suspended", len(cluster.suspended) - lost),
                         ("lost", lost), ("offlined", len(cluster.offlined))):
        m.set("workers", count, state=state)


def try_ended(metrics: Registry, runner: Any, result: Any) -> None:
    """Observe one task try's duration, labelled with its final RunStatus state and whether it was final."""
    metrics.observe("task_try_duration_seconds", time.monotonic() - runner.started,
                    state=result.status.state.name, final=str(result.final).lower())


def job_ended(metrics: Registry, job: Any) -> None:
    """Observe a job's duration once its EndSaga is written."""
    metrics.observe("job_duration_seconds", max(0.0, time.time() - job.created))


def _requestor_gauges(scheduler: Any) -> None:
    """Per-requestor gauges (``<gauge>_<requestor>`` in JSON); a requestor gone idle is zeroed once."""
    counts: Dict[str, List[int]] = {}
    for job in scheduler.jobs.values():
        c = counts.setdefault(job.requestor, [0, 0, 0, 0])
        started = job.num_running or job.num_completed
        c[0 if started else 1] += 1
        c[2] += job.num_running
        c[3] += job.num_tasks - job.num_completed - job.num_running
    for requestor in scheduler.requestors_gauged - set(counts):
        counts[requestor] = [0, 0, 0, 0]
    for requestor, values in counts.items():
        for name, value in zip(_REQUESTOR_GAUGES, values):
            scheduler.metrics.set(name, value, requestor=requestor)
    scheduler.requestors_gauged = {r for r, v in counts.items() if any(v)}


def _task(task: Any) -> Dict[str, Any]:
    status = task.last_status
    if task.runner is not None and task.runner.last is not None:  # a try in flight: what its worker last said
        status = task.runner.last
    state = status.state.name if status is not None and task.status.value != "NOT_STARTED" else task.status.value
    if task.status.value == "IN_PROGRESS":
        state = "RUNNING"
    return {"id": task.task_id, "state": state, "worker": task.node_id,
            "run_id": status.run_id if status else "", "exit_code": status.exit_code if status else None,
            "out_uri": status.out_uri if status else "", "err_uri": status.err_uri if status else "",
            "error": status.error if status else ""}


def _job(job: Any, now: float, max_tasks: int) -> Dict[str, Any]:
    tasks = list(job.tasks.values())
    return {"id": job.id, "status": "COMPLETED" if job.done else "IN_PROGRESS", "requestor": job.requestor,
            "tag": job.tag, "priority": job.priority, "age_s": round(now - job.created, 3),
            "killed": job.killed, "tasks_total": job.num_tasks, "tasks_done": job.num_completed,
            "tasks_running": job.num_running, "tasks": [_task(t) for t in tasks[:max_tasks]]}


def snapshot(scheduler: Any, max_tasks_per_job: int = 1000) -> Dict[str, Any]:
    """Jobs in progress (at most ``max_tasks_per_job`` tasks each), workers and totals, as plain data."""
    now = time.time()
    workers: List[Dict[str, Any]] = []
    for node, state in scheduler.cluster.states():
        task = f"{node.job_id}/{node.task_id}" if node.task_id else ""
        workers.append({"id": node.node_id, "state": state, "task": task})
    workers.sort(key=lambda w: w["id"])
    return {"scheduler": {"uptime_s": round(now - scheduler.started, 3),
                          "current_tasks": scheduler.current_tasks(), "max_tasks": scheduler.throttle},
            "jobs": [_job(j, now, max_tasks_per_job) for j in scheduler.jobs.values()],
            "workers": workers}

"""Worked examples of the pure task-assignment function (spec §4.4, §4.5; the reference's task_scheduler tests)."""

from dataclasses import dataclass, field
from typing import Dict, List

from scootpy.sched.assign import NodeGroup, f32, get_task_assignments


@dataclass
class T:
    job_id: str
    task_id: str
    snapshot_id: str = ""


@dataclass
class J:
    id: str
    tasks: List[T]
    priority: int = 0
    requestor: str = ""
    tag: str = ""
    running: Dict[str, T] = field(default_factory=dict)
    done: Dict[str, T] = field(default_factory=dict)

    @property
    def num_tasks(self):
        return len(self.tasks)

    @property
    def num_completed(self):
        return len(self.done)

    @property
    def num_running(self):
        return len(self.running)

    @property
    def not_started(self):
        return [t for t in self.tasks if t.task_id not in self.running and t.task_id not in self.done]


def job(job_id, n, priority=0, tag=None, requestor="", snap="snapA"):
    return J(job_id, [T(job_id, f"task{i}_P{priority}", snap) for i in range(n)], priority, requestor,
             job_id if tag is None else tag)


def cluster(n):
    return {"": NodeGroup(idle={f"node{i}": None for i in range(n)})}


def requestors(jobs):
    out: Dict[str, list] = {}
    for j in jobs:
        out.setdefault(j.requestor, []).append(j)
    return out


def assign(jobs, groups, soft_max=None, adjustment=(0.15, 0.30, 0.55), num_free=None):
    nodes = sum(len(g.idle) + len(g.busy) for g in groups.values())
    free = nodes - sum(j.num_running for j in jobs) if num_free is None else num_free
    return get_task_assignments(jobs, requestors(jobs), groups, lambda n: True, nodes, max(0, free),
                                soft_max, adjustment)


def test_no_nodes_no_assignments():
    assignments, _ = assign([job("j", 10)], {})
    assert assignments == []


def test_no_tasks_no_assignments():
    assignments, groups = assign([], cluster(5))
    assert assignments == [] and groups is None


def test_tasks_fill_every_free_node():
    assignments, _ = assign([job("j", 10)], cluster(5))
    assert len(assignments) == 5
    assert len({a.node_id for a in assignments}) == 5


def test_priority_stages():
    jobs = [job("job1", 10, 0), job("job2", 10, 1), job("job3", 10, 2)]
    assignments, _ = assign(jobs, cluster(10), soft_max=50, adjustment=(0.05, 0.2, 0.75))
    got = [a.task.task_id[-2:] for a in assignments]
    assert got == ["P2", "P2", "P1", "P0", "P2", "P2", "P2", "P2", "P2", "P1"]


def test_requestor_batching():
    jobs = [J("job1", [T("job1", "task1", "snapA"), T("job1", "task2", "snapA")], tag="TagX"),
            J("job2", [T("job2", "task1", "snapA")], tag="TagY"),
            J("job3", [T("job3", "task1", "snapA"), T("job3", "task2", "snapA")], tag="TagX")]
    assignments, _ = assign(jobs, cluster(6), soft_max=10, adjustment=(1, 1, 1))
    got = [(a.task.job_id, a.task.task_id) for a in assignments]
    assert got == [("job3", "task1"), ("job3", "task2"), ("job1", "task1"), ("job2", "task1"), ("job1", "task2")]


def test_priority_simple_then_freed_node_goes_to_last_job():
    jobs = [job("job1", 1, 0), job("job2", 1, 1), job("job3", 1, 2), job("job4", 1, 0)]
    groups = cluster(3)
    assignments, groups = assign(jobs, groups)
    assert [a.task.job_id for a in assignments] == ["job3", "job2", "job1"]
    for a in assignments:
        next(j for j in jobs if j.id == a.task.job_id).running[a.task.task_id] = a.task
    job3 = jobs[2]
    job3.done = dict(job3.running)
    job3.running.clear()
    groups = {s: NodeGroup(dict(g.idle), dict(g.busy)) for s, g in groups.items()}
    node = next(a.node_id for a in assignments if a.task.job_id == "job3")
    snap = next(s for s, g in groups.items() if node in g.busy)
    del groups[snap].busy[node]
    groups[snap].idle[node] = None
    assignments, _ = get_task_assignments(jobs[2:], requestors(jobs), groups, lambda n: True, 3, 1)
    assert [a.task.job_id for a in assignments] == ["job4"]


def test_observed_forty_tasks_on_ten_nodes_fill_every_node():
    assignments, _ = assign([job("j", 40)], cluster(10))
    assert len(assignments) == 10


def test_float32_ceiling_differs_from_float64():
    # 100 tasks, 1 node, soft 1, P0: float32 gives 16, float64 would give 15.
    assert f32(f32(100.0) * f32(f32(1.0) * f32(0.15))) > 15.0
    assert 100 * (1.0 * 0.15) <= 15.0 + 1e-9


def test_affinity_prefers_hot_nodes_over_untouched_ones():
    groups = {"": NodeGroup(idle={"node4": None}), "snapA": NodeGroup(idle={"node2": None}, busy={"node1": None}),
              "snapB": NodeGroup(idle={"node3": None})}
    j = J("job1", [T("job1", "task4", "snapA"), T("job1", "task5", "snapB")], tag="job1")
    assignments, new_groups = get_task_assignments([j], requestors([j]), groups, lambda n: True, 4, 3,
                                                   adjustment=(1, 1, 1))
    placed = {a.task.task_id: a.node_id for a in assignments}
    assert placed == {"task4": "node2", "task5": "node3"}
    assert "node2" in new_groups["snapA"].busy and "node2" in groups["snapA"].idle  # input left untouched


def test_unusable_nodes_are_skipped():
    groups = cluster(3)
    assignments, _ = get_task_assignments([job("j", 3)], requestors([job("j", 3)]), groups,
                                          lambda n: n != "node0", 3, 3)
    assert sorted(a.node_id for a in assignments) == ["node1", "node2"]


def test_requestor_counts_first_phase():
    """5 nodes; a 5-task P0, 3-task P1 and 1-task P2 job of 3 requestors: one pass runs 2 + 2 + 1 tasks."""
    jobs = [job("p0", 5, 0, requestor="r0"), job("p1", 3, 1, requestor="r1"), job("p2", 1, 2, requestor="r2")]
    assignments, _ = assign(jobs, cluster(5))
    counts = {}
    for a in assignments:
        counts[a.task.job_id] = counts.get(a.task.job_id, 0) + 1
    assert counts == {"p0": 2, "p1": 2, "p2": 1}
    assert [a.task.job_id for a in assignments] == ["p2", "p1", "p0", "p1", "p0"]


def test_random_clusters_keep_the_invariants():
    """Seeded random cases: no node twice, only usable idle nodes, only waiting tasks, never more than free."""
    import random

    rng = random.Random(20191014)
    for case in range(300):
        n_nodes = rng.randint(0, 12)
        snaps = ["", "snapA", "snapB"]
        groups = {s: NodeGroup() for s in snaps}
        for i in range(n_nodes):
            groups[rng.choice(snaps)].idle[f"node{i}"] = None
        busy = [n for g in groups.values() for n in list(g.idle) if rng.random() < 0.3]
        for g in groups.values():
            for n in busy:
                if n in g.idle:
                    del g.idle[n]
                    g.busy[n] = None
        unusable = {n for n in (f"node{i}" for i in range(n_nodes)) if rng.random() < 0.2}
        jobs = []
        for j in range(rng.randint(0, 6)):
            jb = job(f"j{j}", rng.randint(1, 15), rng.randint(0, 2), tag=rng.choice(["x", "y", None]),
                     requestor=rng.choice(["", "r1"]), snap=rng.choice(snaps))
            for t in jb.tasks[:rng.randint(0, 2)]:
                jb.running[t.task_id] = t
            jobs.append(jb)
        healthy = n_nodes - len(unusable)
        num_free = max(0, healthy - len(busy))
        assignments, new_groups = get_task_assignments(jobs, requestors(jobs), groups, lambda n: n not in unusable,
                                                       healthy, num_free)
        nodes = [a.node_id for a in assignments]
        assert len(nodes) == len(set(nodes)), case
        assert len(assignments) <= num_free, case
        idle_before = {n for g in groups.values() for n in g.idle}
        assert set(nodes) <= idle_before - unusable, case
        waiting = {(t.job_id, t.task_id) for jb in jobs for t in jb.not_started}
        placed = [(a.task.job_id, a.task.task_id) for a in assignments]
        assert len(placed) == len(set(placed)) and set(placed) <= waiting, case
        if assignments:
            assert all(n in {m for g in new_groups.values() for m in g.busy} for n in nodes), case

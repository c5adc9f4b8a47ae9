"""Cluster state, job state and admission bookkeeping (spec §3.1, §4.2, §4.3, §4.8; the reference's state tests)."""

from scootpy.sched.admission import BasisHistory, apply_requestor_rules, check_admission
from scootpy.sched.cluster_state import ClusterState
from scootpy.sched.definitions import Command, Job, JobDefinition, TaskDefinition
from scootpy.sched.job_state import JobState, TaskStatus


def test_new_nodes_need_a_probe_and_become_healthy_when_ready():
    c = ClusterState()
    assert c.add("n1", 0.0) is True
    assert "n1" in c.suspended and not c.usable("n1") and "n1" in c.groups[""].idle
    c.housekeeping(0.0)
    assert "n1" in c.suspended
    c.mark_ready("n1")
    c.housekeeping(0.0)
    assert c.usable("n1") and c.num_free() == 1


def test_duplicate_add_of_a_healthy_node_keeps_its_running_task():
    c = ClusterState()
    c.add("n1", 0.0, trusted=True)
    c.task_scheduled("n1", "j", "t", "snapA")
    assert c.add("n1", 1.0) is False
    assert c.healthy["n1"].task_id == "t" and c.num_running == 1 and "n1" in c.groups["snapA"].busy


def test_lost_node_recovers_within_the_grace_and_is_deleted_after_it():
    c = ClusterState(max_lost=60)
    c.add("n1", 0.0, trusted=True)
    c.remove("n1", 10.0)
    assert "n1" in c.suspended and c.suspended["n1"].time_lost == 10.0
    assert c.add("n1", 20.0) is False  # ready and back: no new probe
    c.housekeeping(20.0)
    assert c.usable("n1")
    c.remove("n1", 30.0)
    assert c.housekeeping(89.0) == []
    assert c.housekeeping(91.0) == ["n1"]
    assert c.node("n1") is None and "n1" not in c.groups[""].idle
    c.remove("unknown", 92.0)  # ignored


def test_offline_and_reinstate_are_not_idempotent_in_their_errors():
    c = ClusterState()
    c.add("n1", 0.0, trusted=True)
    assert c.offline("n1") is None
    assert c.offline("n1") == "Node n1 was not present in nodes. It can't be offlined."
    assert not c.usable("n1") and c.num_free() == 0
    assert c.reinstate("n1") is None
    assert c.reinstate("n1") == "Node n1 was not present in offlinedNodes. It can't be reinstated."
    assert c.usable("n1")


def test_node_groups_follow_the_last_snapshot():
    c = ClusterState()
    c.add("n1", 0.0, trusted=True)
    c.task_scheduled("n1", "j", "t1", "snapA")
    assert "n1" in c.groups["snapA"].busy and "n1" not in c.groups[""].idle
    c.task_completed("n1")
    assert "n1" in c.groups["snapA"].idle and c.num_running == 0
    c.task_scheduled("n1", "j", "t2", "snapB")
    assert "snapA" not in c.groups and "n1" in c.groups["snapB"].busy


def test_result_on_an_offlined_node_frees_it_for_later():
    c = ClusterState()
    c.add("n1", 0.0, trusted=True)
    c.task_scheduled("n1", "j", "t", "")
    c.offline("n1")
    c.task_completed("n1")
    c.reinstate("n1")
    assert c.num_free() == 1 and "n1" in c.groups[""].idle


def test_untrusted_node_is_suspended_until_probed_again():
    c = ClusterState()
    c.add("n1", 0.0, trusted=True)
    assert c.untrust("n1") is True
    c.housekeeping(0.0)
    assert not c.usable("n1")
    c.mark_ready("n1")
    c.housekeeping(0.0)
    assert c.usable("n1")


def _job(job_id, n=3, **kw):
    tasks = tuple(TaskDefinition(f"t{i}", Command(("true",), {})) for i in range(n))
    return JobState(Job(job_id, JobDefinition(tasks=tasks, **kw)), saga=None)


def test_job_state_transitions_and_counts():
    j = _job("j")
    assert [t.task_id for t in j.not_started] == ["t0", "t1", "t2"]
    j.task_started("t0", "n1", runner=None)
    assert j.num_running == 1 and [t.task_id for t in j.not_started] == ["t1", "t2"]
    j.task_retry("t0")
    assert j.num_running == 0 and j.tasks["t0"].status == TaskStatus.NOT_STARTED
    j.task_started("t1", "n1", None)
    j.task_completed("t1")
    j.task_completed("t0")  # a kill of a waiting task
    assert j.num_completed == 2 and not j.done
    j.task_completed("t2")
    j.task_completed("t2")
    assert j.done and j.num_completed == 3


def test_recovered_completed_tasks_start_completed():
    j = JobState(Job("j", JobDefinition(tasks=tuple(TaskDefinition(t, Command(("x",), {})) for t in "abc"))),
                 saga=None, completed=["b"])
    assert j.num_completed == 1 and [t.task_id for t in j.not_started] == ["a", "c"]


def test_basis_history_keeps_the_reference_quirks():
    h = BasisHistory()
    for tag in ("T1", "T2", ""):
        assert h.check_and_record("r", "B", tag) is None
    assert h.check_and_record("r", "B", "") is None
    assert h.check_and_record("r", "B", "T1") == "Expired tag=T1 for basis=B. Expected either tag= or new tag."
    assert h.check_and_record("", "rB", "T1") == "Expired tag=T1 for basis=rB. Expected either tag= or new tag."


def test_basis_history_is_bounded():
    h = BasisHistory(max_keys=2, max_tags=3)
    for key in "abc":
        h.check_and_record(key, "B", "T")
    assert len(h._tags) == 2
    for i in range(10):
        h.check_and_record("c", "B", f"T{i}")
    assert len(h._tags["cB"]) == 3


def test_requestor_rules_kill_superseded_and_share_priority():
    old = _job("old", tag="T1", basis="B", requestor="r", priority=2)
    same_tag = _job("same", tag="T9", basis="X", requestor="r", priority=1)
    new = _job("new", tag="T2", basis="B", requestor="r")
    assert apply_requestor_rules(new, [old, same_tag]) == ["old"]
    follower = _job("f", tag="T9", basis="Y", requestor="r", priority=0)
    apply_requestor_rules(follower, [same_tag])
    assert follower.priority == 1
    recovered = _job("rec", priority=7)
    apply_requestor_rules(recovered, [])
    assert recovered.priority == 2


def test_admission_counts_only_jobs_in_progress():
    definition = JobDefinition(tasks=(TaskDefinition("a", Command(("x",), {})),), requestor="new")
    requestors = {f"r{i}": [_job(f"j{i}")] for i in range(10)}
    assert check_admission(definition, requestors, 10, 100, BasisHistory()) == \
        "Exceeds max number of requestors: new (10)"
    requestors["r0"] = []
    assert check_admission(definition, requestors, 10, 100, BasisHistory()) is None

"""A process writing the file saga log is SIGKILLed mid-stream: every acknowledged record survives and
every saga still parses (no half-written entry), so recovery sees exactly the acknowledged progress."""

import signal
import subprocess
import sys
import textwrap

from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.recovery import recoverable_sagas
from scootpy.sched.saga.state import rebuild_state

WRITER = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import sys, gevent
    from scootpy.idl import sched
    from scootpy.sched.saga.codec import encode_job
    from scootpy.sched.saga.file import FileSagaLog
    from scootpy.sched.saga.saga import Saga
    log = FileSagaLog(sys.argv[1])

    def blob(job_id):
        tasks = [sched.TaskDefinition(command=sched.Command(argv=["true"], envVars={}, timeout=0, snapshotId=""),
                                      taskId=f"t{i}") for i in range(200)]
        return encode_job(sched.Job(id=job_id, jobDefinition=sched.JobDefinition(
            jobType="", tasks=tasks, priority=0, tag=job_id, basis="", requestor="")))

    def job(j):
        saga = Saga.start(log, f"job{j}", blob(f"job{j}"))
        print("start", f"job{j}", flush=True)
        def task(t):
            saga.start_task(t)
            saga.start_task(t, b"running")
            saga.end_task(t, b"done")
            print("end", f"job{j}", t, flush=True)
        gevent.joinall([gevent.spawn(task, f"t{i}") for i in range(200)])
    gevent.joinall([gevent.spawn(job, j) for j in range(4)])
""")


def test_sigkill_mid_stream_loses_no_acknowledged_record(tmp_path, procs):
    directory = str(tmp_path / "sagas")
    proc = procs.start([sys.executable, "-c", WRITER, directory], stdout=subprocess.PIPE, text=True)
    acked = []
    for line in proc.stdout:
        acked.append(line.split())
        if len(acked) >= 150:
            break
    procs.stop(proc, signal.SIGKILL)
    log = FileSagaLog(directory)
    ended = {}
    for saga_id in log.get_active_sagas():
        state = rebuild_state(saga_id, log.get_messages(saga_id))
        ended[saga_id] = set(state.completed_task_ids())
    for record in acked:
        if record[0] == "start":
            assert record[1] in ended
        else:
            assert record[2] in ended[record[1]]
    recovery = recoverable_sagas(log)
    assert all(reason == "no messages" for _, reason in recovery.skipped)  # killed while starting
    started = {record[1] for record in acked}
    assert started <= {saga_id for saga_id, _ in recovery.recovered}

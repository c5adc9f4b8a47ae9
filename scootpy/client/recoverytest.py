"""``recoverytest``: crash a whole local cluster mid-run and check that a restarted one finishes every job.

Reference binaries/recoverytest: start a local.local cluster, submit 20 random sim jobs (no snapshot),
kill every process once work is under way, start a new cluster on the same ports and directory (so
the scheduler recovers from ``./.scootdata/filesagalog``), and require all 20 jobs to be COMPLETED or
ROLLED_BACK within 60 s of the start of the wait. Exit 0 on success, 1 otherwise (the cluster is
always torn down first, unlike the reference).
"""

import logging
import threading
import time
from typing import Dict, List, Optional

from scootpy.client import addrs
from scootpy.client.cloudscoot import CloudScootClient
from scootpy.client.jobhelpers import RPC_ERRORS, generate_job, start_job, wait_for_jobs
from scootpy.client.testcluster import LocalTestCluster, harness_main
from scootpy.idl import scoot

log = logging.getLogger(__name__)

NUM_JOBS = 20
TIMEOUT_S = 60.0
PROGRESS_WAIT_S = 1.0
BANNER = "-------------------------------KILLING CLUSTER-------------------------------"




def wait_for_progress(client: CloudScootClient, job_ids: List[str], limit: float = PROGRESS_WAIT_S) -> None:
    """Return once some task has finished (so the crash hits work in flight), or after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            status = client.get_status(job_ids[0])  # the oldest job is the first to make progress
            if any(s == scoot.Status.COMPLETED for s in (status.taskStatus or {}).values()):
                return
        except RPC_ERRORS:
            pass
        time.sleep(0.02)


def _waiter(client: CloudScootClient, job_ids: List[str], result: Dict[str, Optional[str]]) -> None:
    try:
        wait_for_jobs(client, job_ids, TIMEOUT_S)
    except TimeoutError as e:
        result["error"] = str(e)


def run_recovery(ports: addrs.Ports, log_level: str, clusters: List[LocalTestCluster]) -> None:
    """The test itself; raises SetupError/RuntimeError on failure. Every cluster started lands in ``clusters``."""
    client = CloudScootClient(ports.sched_addr)
    clusters.append(LocalTestCluster(ports, log_level).start())
    clusters[0].wait_ready(client)
    log.info("Add Jobs to Scoot Cloud Exec")
    job_ids = []
    for i in range(NUM_JOBS):
        log.info("Adding Job #%d", i)
        job_ids.append(start_job(client, generate_job(-1, "")))
        log.info("Added Job: %s", job_ids[-1])
    result: Dict[str, Optional[str]] = {"error": None}
    waiter = threading.Thread(target=_waiter, args=(CloudScootClient(ports.sched_addr), job_ids, result),
                              daemon=True, name="waiter")
    waiter.start()
    wait_for_progress(client, job_ids)
    log.info("%s", BANNER)
    clusters[0].kill()
    log.info("Reviving Cluster")
    clusters.append(LocalTestCluster(ports, log_level).start())
    waiter.join(TIMEOUT_S + 30)
    if waiter.is_alive() or result["error"]:
        raise RuntimeError(f"Error Occurred Waiting For Jobs to Complete.  {result['error'] or 'waiter hung'}")
    log.info("All Jobs Completed Successfully")


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point: exit 0 when every job survived the crash, 1 otherwise."""
    harness_main("recoverytest", run_recovery, argv)

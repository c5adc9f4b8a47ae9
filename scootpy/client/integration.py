"""``scoot-integration``: drive a fresh local cluster through the client CLIs, as a user would.

Reference binaries/scoot-integration: ingest the current directory with ``scoot-snapshot-db create
ingest_dir --dir .``, run ``scootapi run_job sleep 1 --snapshot_id <id>`` and poll ``get_job_status --json``
until COMPLETED (10 s per job); offline worker 0 and run 10 jobs on the other four; reinstate it and run
10 more. Exit 0 on success; on any failure the cluster is killed and the exit status is 1.
"""

import json
import logging
import time
from typing import List, Optional

from scootpy.client import addrs
from scootpy.client.cloudscoot import CloudScootClient
from scootpy.client.smoke import run_tool
from scootpy.client.testcluster import LocalTestCluster, harness_main
from scootpy.idl import scoot

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 10.0
POLL_S = 0.1
JOBS_PER_ROUND = 10




def tool(argv: List[str]) -> str:
    """Run a client CLI; its stdout, stripped. A failure names the command."""
    try:
        return run_tool(argv).decode("utf-8", "replace").strip()
    except RuntimeError as e:
        raise RuntimeError(f"{' '.join(argv)}: {e}") from None


def run_job(snapshot_id: str) -> str:
    return tool(["scootapi", "run_job", "sleep", "1", "--snapshot_id", snapshot_id])


def job_status(job_id: str) -> str:
    """``scootapi get_job_status <id> --json``; its stdout must be one JobStatus JSON document."""
    out = tool(["scootapi", "get_job_status", job_id, "--json"])
    try:
        status = json.loads(out)
    except ValueError as e:
        raise RuntimeError(f"get_job_status printed something other than JSON: {e}: {out[:200]!r}") from None
    if not isinstance(status, dict) or status.get("status") not in scoot.Status._NAMES_TO_VALUES:
        raise RuntimeError(f"get_job_status printed no valid job status: {out[:200]!r}")
    return status["status"]


def wait_completed(job_id: str, timeout: float = JOB_TIMEOUT_S) -> None:
    """Poll until the job is COMPLETED; ROLLED_BACK or ``timeout`` seconds fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        status = job_status(job_id)
        log.info("Status: %s %s", job_id, status)
        if status == "COMPLETED":
            return
        if status == "ROLLED_BACK":
            raise RuntimeError(f"job {job_id} was ROLLED_BACK")
        if time.monotonic() > deadline:
            raise RuntimeError("Timed out while waiting for job to complete")
        time.sleep(POLL_S)


def run_round(snapshot_id: str, count: int = JOBS_PER_ROUND) -> None:
    """Submit ``count`` jobs one after another, then wait for each (a fresh 10 s budget per job)."""
    job_ids = [run_job(snapshot_id) for _ in range(count)]
    for job_id in job_ids:
        wait_completed(job_id)


def run_integration(ports: addrs.Ports, log_level: str, clusters: List[LocalTestCluster]) -> None:
    """The test itself; raises on failure."""
    clusters.append(LocalTestCluster(ports, log_level).start())
    clusters[0].wait_ready(CloudScootClient(ports.sched_addr))
    snapshot_id = tool(["scoot-snapshot-db", "create", "ingest_dir", "--dir", "."])
    log.info("Snapshot of the working directory: %s", snapshot_id)
    job_id = run_job(snapshot_id)
    wait_completed(job_id)
    worker = f"localhost:{ports.worker_thrift(0)}"
    tool(["scootapi", "offline_worker", worker])
    run_round(snapshot_id)
    tool(["scootapi", "reinstate_worker", worker])
    run_round(snapshot_id)
    log.info("Integration test passed")


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point."""
    harness_main("scoot-integration", run_integration, argv)

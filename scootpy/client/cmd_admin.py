"""``scootapi offline_worker``, ``reinstate_worker``, ``get_scheduler_status`` and ``set_scheduler_status``."""

import getpass
import logging
from typing import Any, Callable, List

from scootpy.client.cmd_run_job import go_list
from scootpy.client.cmd_status import RPC_ERRORS, rpc_error
from scootpy.client.cobra import CobraCommand, CobraError, GoFlag
from scootpy.client.jsonout import go_json, go_string

log = logging.getLogger(__name__)


def _requestor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError) as e:
        raise CobraError(f"user: Current not implemented: {e}") from None


def _worker_call(args: List[str], call: Callable[[str, str], None], verb: str, doing: str, done: str) -> None:
    """``call(worker id, requestor)`` with the reference's texts (verb "offline", doing "offlining", done
    "offlined")."""
    if not args:
        raise CobraError(f"A worker id must be provided in order to {verb}")
    try:
        call(args[0], _requestor())
    except RPC_ERRORS as e:
        raise rpc_error(e, f"Error {doing} worker: ") from None
    log.info("Worker %s %s", args[0], done)


def offline_worker(cli: Any, args: List[str]) -> None:
    log.info("Offlining Scoot Worker %s", go_list(args))
    _worker_call(args, cli.client.offline_worker, "offline", "offlining", "offlined")


def reinstate_worker(cli: Any, args: List[str]) -> None:
    log.info("Reinstating Scoot Worker %s", go_list(args))
    _worker_call(args, cli.client.reinstate_worker, "reinstate", "reinstating", "reinstated")


def get_scheduler_status(cli: Any, args: List[str], json: bool) -> None:
    log.info("Checking Status for Scheduler%s", go_list(args))
    try:
        status = cli.client.get_scheduler_status()
    except RPC_ERRORS as e:
        raise rpc_error(e, "Error getting status: ") from None
    if json:
        text = go_json(status)
        log.info("%s\n", text)
        print(text, flush=True)
    else:
        log.info("Job Status:%s", go_string(status))
        print("Job Status:", go_string(status), flush=True)


def set_scheduler_status(cli: Any, args: List[str], json: bool, task_throttle: int) -> None:
    """Set the task throttle; no flag means -1 (unthrottled), as in the reference."""
    log.info("Set the maximum number of (running + waiting) tasks we want the scheduler to run.  Note: the "
             "scheduler does not enforce this limit.  We expect the job requestor to adhere to it.%s", go_list(args))
    if not -(1 << 31) <= task_throttle < (1 << 31):
        raise CobraError(f"Error getting status: invlid max tasks value:{task_throttle}. Must be >= -1.")
    try:
        cli.client.set_scheduler_status(task_throttle)
    except RPC_ERRORS as e:
        raise rpc_error(e, "Error getting status: ") from None


OFFLINE_WORKER = CobraCommand("offline_worker", offline_worker, "OfflineWorker")
REINSTATE_WORKER = CobraCommand("reinstate_worker", reinstate_worker, "ReinstateWorker")
GET_SCHEDULER_STATUS = CobraCommand("get_scheduler_status", get_scheduler_status, "GetSchedulerStatus",
                                    [GoFlag("json", "bool", False, "Print out status as JSON")])
SET_SCHEDULER_STATUS = CobraCommand(
    "set_scheduler_status", set_scheduler_status, "set the scheduler status",
    [GoFlag("json", "bool", False, "Print out job status as JSON"),
     GoFlag("task-throttle", "int", -1, "Set the task throttle")],
    example="scootapi set_scheduler_status --task-throttle 20")

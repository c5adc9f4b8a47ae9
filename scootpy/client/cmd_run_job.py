"""``scootapi run_job [ARGV...]`` / ``run_job --job_def FILE``: submit a job and print its id on stdout.

ARGV mode sends one task ``task1`` (a bare sha ``--snapshot_id`` becomes ``stream-gc-<stream>-<sha>``);
``--job_def`` reads the reference's JSON schema with Go's rules (keys match case-insensitively, unknown
keys are ignored, a wrong JSON type is an error).
"""

import json
import logging
from typing import Any, Dict, List

from scootpy.client.cloudscoot import ClientError, go_error_text
from scootpy.client.cobra import CobraCommand, CobraError, GoFlag
from scootpy.idl import scoot

log = logging.getLogger(__name__)

INT32 = (-(1 << 31), (1 << 31) - 1)
TASK_SCHEMA = {"Args": "[]string", "EnvVars": "map[string]string", "SnapshotID": "string",
               "TimeoutMs": "int32", "TaskID": "string"}
JOB_SCHEMA = {"Tasks": "[]client.TaskDef", "DefaultTaskTimeoutMs": "int32", "Priority": "int32",
              "Tag": "string", "Basis": "string", "JobType": "string", "Requestor": "string"}
_ZERO = {"string": "", "int32": 0, "[]string": [], "map[string]string": {}, "[]client.TaskDef": []}


def go_list(items: List[str]) -> str:
    """Go's ``fmt.Sprint`` of a []string: ``[a b c]``."""
    return "[" + " ".join(items) + "]"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {json.dumps(value)}"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def _type_error(value: Any, where: str, gotype: str) -> ValueError:
    return ValueError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {where} of type {gotype}")


def _decode(value: Any, gotype: str, where: str) -> Any:
    if value is None:
        return _ZERO[gotype]
    if gotype == "string" and isinstance(value, str):
        return value
    if gotype == "int32" and isinstance(value, int) and not isinstance(value, bool) and \
            INT32[0] <= value <= INT32[1]:
        return value
    if gotype == "[]string" and isinstance(value, list):
        return [_decode(v, "string", where) for v in value]
    if gotype == "map[string]string" and isinstance(value, dict):
        return {k: _decode(v, "string", where) for k, v in value.items()}
    if gotype == "[]client.TaskDef" and isinstance(value, list):
        return [_decode_struct(v, TASK_SCHEMA, "TaskDef") for v in value]
    raise _type_error(value, where, gotype)


def _decode_struct(obj: Any, schema: Dict[str, str], name: str) -> Dict[str, Any]:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise ValueError(f"json: cannot unmarshal {_json_kind(obj)} into Go value of type client.{name}")
    fields = {key.lower(): key for key in schema}
    out = {key: _ZERO[gotype] for key, gotype in schema.items()}
    for key, value in obj.items():
        field = fields.get(key.lower())
        if field is not None:
            out[field] = _decode(value, schema[field], f"{name}.{field}")
    return out


def parse_job_def(data: bytes) -> Any:
    """Build the scoot.JobDefinition the reference sends for a ``--job_def`` file's bytes."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"invalid JSON in job definition: {e}") from None
    job = _decode_struct(raw, JOB_SCHEMA, "CLIJobDef")
    tasks = []
    for task in job["Tasks"]:
        tasks.append(scoot.TaskDefinition(
            command=scoot.Command(argv=task["Args"], envVars=dict(task["EnvVars"])),
            snapshotId=task["SnapshotID"], taskId=task["TaskID"],
            timeoutMs=task["TimeoutMs"] if task["TimeoutMs"] > 0 else None))
    return scoot.JobDefinition(
        tasks=tasks, tag=job["Tag"], basis=job["Basis"], jobType=job["JobType"], requestor=job["Requestor"],
        priority=job["Priority"],
        defaultTaskTimeoutMs=job["DefaultTaskTimeoutMs"] if job["DefaultTaskTimeoutMs"] > 0 else None)


def argv_job(argv: List[str], snapshot_id: str, stream_name: str, tag: str) -> Any:
    """The one-task job of ARGV mode."""
    if not snapshot_id:
        log.info("No snapshotID provided - cmd will be run in an empty tmpdir.")
    elif "-" not in snapshot_id:
        stream_id = f"stream-gc-{stream_name}-{snapshot_id}"
        log.info("Converting sha to a stream-based snapshot_id: %s -> %s", snapshot_id, stream_id)
        snapshot_id = stream_id
    task = scoot.TaskDefinition(command=scoot.Command(argv=list(argv)), snapshotId=snapshot_id, taskId="task1")
    return scoot.JobDefinition(tasks=[task], tag=tag)


def _read_job_def(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            data = f.read(64 << 20)
    except OSError as e:
        raise CobraError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        return parse_job_def(data)
    except ValueError as e:
        raise CobraError(str(e)) from None


def run_job(cli: Any, args: List[str], stream_name: str, snapshot_id: str, job_def: str, tag: str) -> None:
    """Submit the job; stdout gets exactly ``<jobId>\\n``."""
    log.info("Running on scoot, args:%s", go_list(args))
    if args and job_def:
        raise CobraError("You must provide either args or a job definition")
    if args:
        job = argv_job(args, snapshot_id, stream_name, tag)
    elif job_def:
        job = _read_job_def(job_def)
    else:
        job = scoot.JobDefinition(tasks=[], tag=tag)
    try:
        job_id = cli.client.run_job(job)
    except scoot.InvalidRequest as e:
        raise CobraError(f"Invalid Request: {e.message or ''}") from None
    except scoot.CanNotScheduleNow as e:
        raise CobraError(f"Error running job: {go_error_text(e)} *scoot.CanNotScheduleNow") from None
    except ClientError as e:
        raise CobraError(f"Error running job: {e} {e.go_type}") from None
    print(job_id, flush=True)
    log.info("JobID: %s", job_id)


COMMAND = CobraCommand("run_job", run_job, "run a job", [
    GoFlag("stream_name", "string", "sm",
           "If passing snapshot_id=SHA, this is the global UID for the associated repo."),
    GoFlag("snapshot_id", "string", "",
           "Repo checkout id: <master-sha> OR <backend>-<kind>(-<additional information>)+"),
    GoFlag("job_def", "string", "", "JSON file to read jobs from. Error if snapshot_id flag is also provided."),
    GoFlag("tag", "string", "", "Tag can be specified by requestor in order to more easily trace a job through logs"),
])

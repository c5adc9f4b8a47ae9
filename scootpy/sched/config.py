"""The scheduler's ``-config``: the reference's embedded configs, JSON overrides, and option parsing (spec §1.2).

``resolve_config_text`` turns the flag into JSON text, ``parse_config`` into a ``SchedulerSetup`` whose four
options (SagaLog, Cluster, Workers, SchedulerConfig) are validated here; Cluster and Workers dicts are handed
on to ``scootpy.sched.cluster``. Errors raise ConfigError with the reference's fatal texts.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

from scootpy.flags import parse_duration

LOCAL_MEMORY = ('{"Cluster":{"Type":"memory","Count":10},"SchedulerConfig":{"Type":"stateful",'
                '"MaxRetriesPerTask":0,"DebugMode":false,"RecoverJobsOnStartup":false,"DefaultTaskTimeout":"30m"},'
                '"SagaLog":{"Type":"memory","ExpirationSec":0,"GCIntervalSec":1}}')
LOCAL_LOCAL = ('{"Cluster":{"Type":"local"},"Workers":{"Type":"rpc","PollingPeriod":"250ms"},'
               '"SchedulerConfig":{"Type":"stateful","MaxRetriesPerTask":0,"DebugMode":false,'
               '"RecoverJobsOnStartup":true,"DefaultTaskTimeout":"30m"},'
               '"SagaLog":{"Type":"file","Directory":".scootdata/filesagalog"}}')
ASSETS = {"config/local.memory": LOCAL_MEMORY, "config/local.local": LOCAL_LOCAL}
_ASSET_NAME = re.compile(r"^[A-Za-z0-9]*\.[A-Za-z0-9]*\.*.*$", re.DOTALL)

IMPLEMENTATIONS = {
    "SagaLog": ("", "file", "memory"),
    "Cluster": ("", "file", "local", "memory", "static"),
    "Workers": ("", "local", "rpc"),
    "SchedulerConfig": ("", "stateful"),
}

DEFAULT_TASK_TIMEOUT_S = 30 * 60.0
DEFAULT_TASK_TIMEOUT_OVERHEAD_S = 15.0
DEFAULT_MAX_REQUESTORS = 10
DEFAULT_MAX_JOBS_PER_REQUESTOR = 100
DEFAULT_INFRA_RETRIES = 2


class ConfigError(Exception):
    """A config the scheduler cannot start with; the text is the reference's fatal message."""


@dataclass(frozen=True)
class SchedulerConfig:
    """Scheduler tunables. Durations are in seconds.

    Worker polling runs every ``poll_start`` s for the first ``poll_fast`` s of a run, then waits
    ``poll_fraction`` of the run's age between polls (so an end is seen within that fraction of the run's
    time), at most ``poll_max``. ``max_retries`` applies to worker-reported failures, as in the reference;
    infrastructure failures (worker died, restarted, unreachable or hanging) get
    ``max(max_retries, infra_retries)`` retries on other workers.
    """

    max_retries: int = 0
    infra_retries: int = DEFAULT_INFRA_RETRIES
    recover_jobs_on_startup: bool = False
    default_task_timeout: float = DEFAULT_TASK_TIMEOUT_S
    task_timeout_overhead: float = DEFAULT_TASK_TIMEOUT_OVERHEAD_S
    max_requestors: int = DEFAULT_MAX_REQUESTORS
    max_jobs_per_requestor: int = DEFAULT_MAX_JOBS_PER_REQUESTOR
    admins: Tuple[str, ...] = ()
    runner_retry_timeout: float = 10.0
    runner_retry_interval: float = 1.0
    ready_backoff: float = 5.0
    probe_timeout: float = 10.0
    rpc_timeout: float = 15.0
    max_lost: float = 60.0
    poll_start: float = 0.005
    poll_fast: float = 0.03
    running_record_after: float = 0.05
    poll_max: float = 0.25
    poll_fraction: float = 0.2
    tick: float = 0.25


@dataclass(frozen=True)
class SchedulerSetup:
    """The four parsed options of a scheduler config."""

    saga_log: Dict[str, Any] = field(default_factory=dict)
    cluster: Dict[str, Any] = field(default_factory=dict)
    workers: Dict[str, Any] = field(default_factory=dict)
    scheduler: SchedulerConfig = SchedulerConfig()


def _merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    for key, value in override.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base


def resolve_config_text(flag: str) -> str:
    """``a.b`` names an embedded config, ``a.b.<json>`` overrides it; anything else is literal JSON."""
    if not _ASSET_NAME.match(flag):
        return flag
    parts = flag.split(".", 2)
    name = f"config/{parts[0]}.{parts[1]}"
    if name not in ASSETS:
        raise ConfigError(f"Scheduler: Error Loading Config File {name}: Asset {name} not found")
    if len(parts) < 3:
        return ASSETS[name]
    try:
        override = json.loads(parts[2])
    except ValueError as e:
        raise ConfigError(f"Scheduler: Error Parsing Config File Suffix {name}: {e}") from None
    if not isinstance(override, dict):
        raise ConfigError(f"Scheduler: Error Merging Config File Suffix {name}: {ASSETS[name]} + {parts[2]}")
    return json.dumps(_merge(json.loads(ASSETS[name]), override))


def _option(parsed: Dict[str, Any], name: str) -> Dict[str, Any]:
    value = parsed.get(name)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"Error parsing type for Implementations {name}: json: cannot unmarshal "
                          f"{type(value).__name__} into Go value of type struct {{ Type string }}")
    kind = _get(value, "Type", "")
    if not isinstance(kind, str):
        raise ConfigError(f"Error parsing type for Implementations {name}: json: cannot unmarshal "
                          f"{type(kind).__name__} into Go struct field .Type of type string")
    if kind not in IMPLEMENTATIONS[name]:
        known = " ".join(f"{k}:{{}}" for k in IMPLEMENTATIONS[name])
        raise ConfigError(f'Error parsing Implementations {name}: "{kind}" is not a valid Implementation '
                          f"map[{known}] <nil> <nil>")
    return {"Type": kind, **{k: v for k, v in value.items() if k.lower() != "type"}}


def _get(obj: Dict[str, Any], key: str, default: Any) -> Any:
    """Go encoding/json field lookup: exact name first, then case-insensitive."""
    if key in obj:
        return obj[key]
    for k, v in obj.items():
        if k.lower() == key.lower():
            return v
    return default


def _typed(obj: Dict[str, Any], key: str, default: Any, kind: type, option: str = "SchedulerConfig") -> Any:
    value = _get(obj, key, default)
    if value is None:
        return default
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is int and isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        raise ConfigError(f"Error parsing variable {option}: json: cannot unmarshal {value!r} "
                          f"into Go struct field .{key} of type {kind.__name__}")
    return value


def _duration(obj: Dict[str, Any], key: str) -> float:
    text = _typed(obj, key, "", str)
    if not text:
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as e:
        raise ConfigError(str(e)) from None


# Our own optional knobs (the reference hard-codes these); a Go scheduler ignores unknown keys.
_EXTRA_DURATIONS = (("RunnerRetryTimeout", "runner_retry_timeout"), ("RunnerRetryInterval", "runner_retry_interval"),
                    ("ReadyFnBackoff", "ready_backoff"), ("MaxLostDuration", "max_lost"),
                    ("WorkerRpcTimeout", "rpc_timeout"))


def scheduler_config_from_dict(obj: Dict[str, Any]) -> SchedulerConfig:
    """Read the SchedulerConfig option, applying the reference's in-code defaults for zero values.

    Besides the reference's fields it reads ``InfraRetriesPerTask`` and the durations ``RunnerRetryTimeout``,
    ``RunnerRetryInterval``, ``ReadyFnBackoff``, ``MaxLostDuration`` and ``WorkerRpcTimeout``.
    """
    timeout = _duration(obj, "DefaultTaskTimeout") or DEFAULT_TASK_TIMEOUT_S
    overhead = _duration(obj, "TaskTimeoutOverhead") or DEFAULT_TASK_TIMEOUT_OVERHEAD_S
    admins = tuple(a for a in _typed(obj, "Admins", "", str).split(",") if a)
    base = SchedulerConfig()
    extras = {name: _duration(obj, key) or getattr(base, name) for key, name in _EXTRA_DURATIONS}
    return SchedulerConfig(
        **extras,
        infra_retries=max(0, _typed(obj, "InfraRetriesPerTask", DEFAULT_INFRA_RETRIES, int)),
        max_retries=max(0, _typed(obj, "MaxRetriesPerTask", 0, int)),
        recover_jobs_on_startup=_typed(obj, "RecoverJobsOnStartup", False, bool),
        default_task_timeout=timeout, task_timeout_overhead=overhead,
        max_requestors=_typed(obj, "MaxRequestors", 0, int) or DEFAULT_MAX_REQUESTORS,
        max_jobs_per_requestor=_typed(obj, "MaxJobsPerRequestor", 0, int) or DEFAULT_MAX_JOBS_PER_REQUESTOR,
        admins=admins)


def parse_config(text: str) -> SchedulerSetup:
    """Parse config JSON text into the four validated options."""
    try:
        parsed = json.loads(text or "{}")
    except ValueError as e:
        raise ConfigError(f"Couldn't parse top-level config: {e}") from None
    if not isinstance(parsed, dict):
        raise ConfigError("Couldn't parse top-level config: json: cannot unmarshal "
                          f"{type(parsed).__name__} into Go value of type map[string]json.RawMessage")
    saga_log = _option(parsed, "SagaLog")
    if saga_log["Type"] == "file" and not _typed(saga_log, "Directory", "", str, "SagaLog"):
        raise ConfigError("Error parsing variable SagaLog: file saga log needs a Directory")
    for key in ("ExpirationSec", "GCIntervalSec"):
        _typed(saga_log, key, 0, int, "SagaLog")
    return SchedulerSetup(saga_log=saga_log, cluster=_option(parsed, "Cluster"), workers=_option(parsed, "Workers"),
                          scheduler=scheduler_config_from_dict(_option(parsed, "SchedulerConfig")))

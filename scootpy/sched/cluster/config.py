"""The ``Cluster`` and ``Workers`` options of a scheduler config, turned into a membership and client maker.

The JSON follows the reference's rules (spec scheduler §1.2): the implementation is chosen by ``"Type"``
(missing or empty selects the default), field names match case-insensitively, unknown fields are ignored,
a JSON ``null`` leaves a default alone, and a value of the wrong JSON type is an error. Errors are
``ValueError`` with the reference's texts.
"""

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

from scootpy.flags import parse_duration
from scootpy.sched.cluster.client import DEFAULT_POLLING_PERIOD_S, WorkerClient
from scootpy.sched.cluster.fake import FakeWorkerClient
from scootpy.sched.cluster.local import local_membership
from scootpy.sched.cluster.memberfile import file_membership, parse_address
from scootpy.sched.cluster.membership import Membership, fixed
from scootpy.sched.cluster.rpc import DEFAULT_TIMEOUT_S, RpcWorkerClient

log = logging.getLogger(__name__)

DEFAULT_MEMORY_COUNT = 10
MAX_MEMORY_COUNT = 10_000
CLUSTER_TYPES = {"": "memory", "memory": "memory", "local": "local", "static": "static", "file": "file"}
WORKERS_TYPES = {"": "local", "local": "local", "rpc": "rpc"}

WorkerClientMaker = Callable[[str], WorkerClient]


def membership_from_config(cluster_cfg: Optional[Dict[str, Any]]) -> Membership:
    """Build the membership the ``Cluster`` option describes (``None`` or ``{}`` = 10 in-memory nodes)."""
    kind = _implementation("Cluster", cluster_cfg, CLUSTER_TYPES)
    cfg = cluster_cfg or {}
    if kind == "memory":
        count = _field("Cluster", cfg, "ClusterMemoryConfig", "Count", int, DEFAULT_MEMORY_COUNT)
        if not 0 <= count <= MAX_MEMORY_COUNT:
            raise ValueError(f"Error parsing variable Cluster: Count must be 0..{MAX_MEMORY_COUNT}, got {count}")
        return fixed([f"inmemory{i}" for i in range(count)], "memory")
    if kind == "local":
        return local_membership()
    if kind == "static":
        return fixed(_static_workers(cfg), "static")
    path = _field("Cluster", cfg, "ClusterFileConfig", "Path", str, "")
    if not path:
        raise ValueError('Error parsing variable Cluster: "file" cluster needs a "Path" to the membership file')
    return file_membership(path)


def worker_clients_from_config(workers_cfg: Optional[Dict[str, Any]],
                               timeout: float = DEFAULT_TIMEOUT_S) -> WorkerClientMaker:
    """Build the maker of worker clients the ``Workers`` option describes (``None`` = in-process fakes).

    The maker takes a node id and returns a new client each call; ``timeout`` is the Thrift socket timeout.
    """
    kind = _implementation("Workers", workers_cfg, WORKERS_TYPES)
    if kind == "local":
        return FakeWorkerClient
    text = _field("Workers", workers_cfg or {}, "WorkersThriftConfig", "PollingPeriod", str, "")
    period = parse_duration(text) if text else DEFAULT_POLLING_PERIOD_S
    if period < 0:
        raise ValueError(f"Error parsing variable Workers: PollingPeriod must not be negative, got {text!r}")
    return lambda node_id: RpcWorkerClient(node_id, polling_period=period, timeout=timeout)


def _static_workers(cfg: Dict[str, Any]) -> List[str]:
    workers = _field("Cluster", cfg, "ClusterStaticConfig", "Workers", list, [])
    for worker in workers:
        if not isinstance(worker, str):
            raise ValueError("Error parsing variable Cluster: json: cannot unmarshal "
                             f"{_json_kind(worker)} into Go struct field ClusterStaticConfig.Workers of type string")
    try:
        found = sorted({parse_address(w) for w in workers})
    except ValueError as e:
        raise ValueError(f"Error parsing variable Cluster: {e}") from None
    if not found:
        log.warning("static cluster lists no workers")
    return found


def _implementation(option: str, cfg: Any, types: Dict[str, str]) -> str:
    if cfg is None:
        return types[""]
    if not isinstance(cfg, dict):
        raise ValueError(f"Error parsing type for Implementations {option}: json: cannot unmarshal "
                         f"{_json_kind(cfg)} into Go value of type struct {{ Type string }}")
    name = _field(option, cfg, "", "Type", str, "", type_error=f"Error parsing type for Implementations {option}")
    if name not in types:
        valid = " ".join(f"{t}:{types[t]}" for t in sorted(types))
        raise ValueError(f"Error parsing Implementations {option}: {_go_quote(name)} is not a valid "
                         f"Implementation map[{valid}] <nil> <nil>")
    return types[name]


def _field(option: str, cfg: Dict[str, Any], struct: str, name: str, kind: type, default: Any,
           type_error: Optional[str] = None) -> Any:
    """Read field ``name`` the way Go's encoding/json fills a struct field of that type."""
    value = _lookup(cfg, name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        go_type = {int: "int", str: "string", list: "[]string"}[kind]
        where = f"{struct}.{name}" if struct else f".{name}"
        prefix = type_error or f"Error parsing variable {option}"
        what = f"number {value}" if kind is int and isinstance(value, float) else _json_kind(value)
        raise ValueError(f"{prefix}: json: cannot unmarshal {what} into Go struct field "
                         f"{where} of type {go_type}")
    return value


def _lookup(cfg: Dict[str, Any], name: str) -> Any:
    """The last non-null value whose key matches ``name`` case-insensitively, as Go's decoder leaves it."""
    found = None
    for key, value in cfg.items():
        if isinstance(key, str) and key.lower() == name.lower() and value is not None:
            found = value
    return found


def _json_kind(value: Any) -> str:
    kinds: Tuple[Tuple[type, str], ...] = ((bool, "bool"), (str, "string"), (int, "number"), (float, "number"),
                                          (list, "array"), (dict, "object"))
    return next((label for t, label in kinds if isinstance(value, t)), type(value).__name__)


def _go_quote(text: str) -> str:
    """Go's %q for a plain string: double quotes with backslash escapes."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'

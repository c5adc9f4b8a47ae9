"""One small metrics registry for every server: counters, gauges and latency histograms.

It renders the reference's ``/admin/metrics.json`` shape (``<scope>/<name>`` keys, latencies expanded to
``.avg .count .max .min .sum .p50 ...`` in milliseconds) and Prometheus text for ``/metrics``.
"""

import json
import logging
import math
import re
import threading
import time
from collections import deque
from typing import Dict, Iterable, List, Optional, Set, Tuple

log = logging.getLogger(__name__)

Labels = Tuple[Tuple[str, str], ...]
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_QUANTILES = ((".p50", 0.5), (".p90", 0.9), (".p95", 0.95), (".p99", 0.99), (".p999", 0.999), (".p9999", 0.9999))
_RESERVOIR = 1028


def _labels(labels: Dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


class Histogram:
    """Latency observations in seconds: Prometheus buckets plus a bounded sample for percentiles."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.min = float("inf")
        self.max = 0.0
        self.buckets = [0] * len(_BUCKETS)
        self.recent: deque = deque(maxlen=_RESERVOIR)

    def observe(self, seconds: float) -> None:
        """Record one observation, in seconds."""
        self.count += 1
        self.total += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)
        self.recent.append(seconds)
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1

    def json_fields(self, key: str) -> Dict[str, float]:
        """The reference's latency keys: ``.avg`` and percentiles as float ms, ``.max .min .sum`` as int ms."""
        if not self.count:
            return {}
        out = {key + ".avg": self.total * 1000 / self.count, key + ".count": self.count,
               key + ".max": _whole_ms(self.max), key + ".min": _whole_ms(self.min),
               key + ".sum": _whole_ms(self.total)}
        ms = sorted(s * 1000 for s in self.recent)
        for suffix, q in _QUANTILES:
            out[key + suffix] = _percentile(ms, q)
        return out


def _whole_ms(seconds: float) -> int:
    return int(seconds * 1000)


def _percentile(values: List[float], q: float) -> float:
    """go-metrics' SamplePercentiles: linear interpolation at rank ``q * (n + 1)``."""
    pos = q * (len(values) + 1)
    if pos < 1:
        return values[0]
    if pos >= len(values):
        return values[-1]
    lower, upper = values[int(pos) - 1], values[int(pos)]
    return lower + (pos - math.floor(pos)) * (upper - lower)


class Registry:
    """Named metrics of one server; ``scope`` prefixes JSON keys (``scheduler/...``) and Prometheus names."""

    def __init__(self, scope: str):
        self.scope = scope
        self.started = time.time()
        self._lock = threading.Lock()
        self._counters: Dict[str, Dict[Labels, float]] = {}
        self._gauges: Dict[str, Dict[Labels, float]] = {}
        self._histograms: Dict[str, Dict[Labels, Histogram]] = {}
        self._help: Dict[str, str] = {}
        self._kinds: Dict[str, str] = {}
        self._misused: Set[Tuple[str, str]] = set()
        self._prometheus_only: Set[str] = set()

    def describe(self, name: str, text: str, in_json: bool = True) -> None:
        """Set the Prometheus HELP text of ``name``; ``in_json=False`` keeps it out of ``to_json``."""
        self._help[name] = text
        if not in_json:
            self._prometheus_only.add(name)

    def _claim(self, name: str, kind: str) -> bool:
        """A name keeps the kind it was first used as; a use as another kind is dropped (and logged once)."""
        first = self._kinds.setdefault(name, kind)
        if first != kind and (name, kind) not in self._misused:
            self._misused.add((name, kind))
            log.error("metric %s is a %s; ignoring its use as a %s", name, first, kind)
        return first == kind

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` to a counter."""
        with self._lock:
            if self._claim(name, "counter"):
                series = self._counters.setdefault(name, {})
                key = _labels(labels)
                series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        with self._lock:
            if self._claim(name, "gauge"):
                self._gauges.setdefault(name, {})[_labels(labels)] = value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Record one latency, in seconds, in a histogram."""
        with self._lock:
            if self._claim(name, "histogram"):
                series = self._histograms.setdefault(name, {})
                series.setdefault(_labels(labels), Histogram()).observe(seconds)

    def observe_rpc(self, method: str, seconds: float) -> None:
        """Count one Thrift call and its latency."""
        self.inc("rpc_requests_total", method=method)
        self.observe("rpc_latency_seconds", seconds, method=method)

    def value(self, name: str, **labels: str) -> Optional[float]:
        """Current value of a counter or gauge series (None when never set)."""
        key = _labels(labels)
        for family in (self._counters, self._gauges):
            if key in family.get(name, {}):
                return family[name][key]
        return None

    def to_json(self, pretty: bool = False) -> str:
        """The reference's metrics.json object: ``<scope>/<name>[_<label value>...]`` keys."""
        out: Dict[str, Optional[float]] = {}
        with self._lock:
            for family in (self._counters, self._gauges):
                for name, series in family.items():
                    if name not in self._prometheus_only:
                        out.update((self._json_key(name, l), _json_number(v)) for l, v in series.items())
            for name, series in self._histograms.items():
                if name not in self._prometheus_only:
                    for labels, hist in series.items():
                        out.update(hist.json_fields(self._json_key(name, labels)))
        return json.dumps(out, indent=2 if pretty else None, sort_keys=True)

    def _json_key(self, name: str, labels: Labels) -> str:
        suffix = "".join("_" + v.replace("/", "_SLASH_") for _, v in labels)
        return f"{self.scope}/{name}{suffix}"

    def to_prometheus(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines = []
        with self._lock:
            for kind, family in (("counter", self._counters), ("gauge", self._gauges)):
                for name, series in sorted(family.items()):
                    pname = self._prom_name(name)
                    lines += self._header(name, pname, kind)
                    lines += [f"{pname}{_prom_labels(l)} {_num(v)}" for l, v in sorted(series.items())]
            for name, series in sorted(self._histograms.items()):
                pname = self._prom_name(name)
                lines += self._header(name, pname, "histogram")
                for labels, hist in sorted(series.items()):
                    for bound, count in zip(_BUCKETS, hist.buckets):
                        lines.append(f"{pname}_bucket{_prom_labels(labels + (('le', _num(bound)),))} {count}")
                    lines.append(f"{pname}_bucket{_prom_labels(labels + (('le', '+Inf'),))} {hist.count}")
                    lines.append(f"{pname}_sum{_prom_labels(labels)} {_num(hist.total)}")
                    lines.append(f"{pname}_count{_prom_labels(labels)} {hist.count}")
        return "".join(line + "\n" for line in lines)

    def _prom_name(self, name: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_:]", "_", f"scoot_{self.scope}_{name}")

    def _header(self, name: str, pname: str, kind: str) -> Iterable[str]:
        default = f"{name}, in seconds (metrics.json reports it in ms)" if kind == "histogram" else name
        text = self._help.get(name, default).replace("\\", "\\\\").replace("\n", "\\n")
        return [f"# HELP {pname} {text}", f"# TYPE {pname} {kind}"]


def _json_number(value: float) -> Optional[float]:
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _num(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() else repr(value)


def _label_name(name: str) -> str:
    clean = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return "_" + clean if clean[:1].isdigit() or clean.startswith("__") or not clean else clean


def _prom_labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{_label_name(k)}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

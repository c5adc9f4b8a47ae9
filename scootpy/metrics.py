"""One small metrics registry for every server: counters, gauges and latency histograms.

It renders the reference's ``/admin/metrics.json`` shape (``<scope>/<name>`` keys, latencies expanded to
``.avg .count .max .min .sum .p50 ...`` in milliseconds) and Prometheus text for ``/metrics``.
"""

import json
import re
import threading
import time
from collections import deque
from typing import Dict, Iterable, Optional, Tuple

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
        self.count += 1
        self.total += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)
        self.recent.append(seconds)
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1

    def json_fields(self, key: str) -> Dict[str, float]:
        if not self.count:
            return {}
        ms = sorted(s * 1000 for s in self.recent)
        out = {key + ".avg": self.total * 1000 / self.count, key + ".count": self.count,
               key + ".max": self.max * 1000, key + ".min": self.min * 1000, key + ".sum": self.total * 1000}
        for suffix, q in _QUANTILES:
            out[key + suffix] = ms[min(len(ms) - 1, int(q * len(ms)))]
        return out


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

    def describe(self, name: str, text: str) -> None:
        self._help[name] = text

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        with self._lock:
            series = self._counters.setdefault(name, {})
            key = _labels(labels)
            series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._gauges.setdefault(name, {})[_labels(labels)] = value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        with self._lock:
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
        out: Dict[str, float] = {}
        with self._lock:
            for family in (self._counters, self._gauges):
                for name, series in family.items():
                    for labels, value in series.items():
                        out[self._json_key(name, labels)] = int(value) if float(value).is_integer() else value
            for name, series in self._histograms.items():
                for labels, hist in series.items():
                    out.update(hist.json_fields(self._json_key(name, labels)))
        return json.dumps(out, indent=2 if pretty else None, sort_keys=True)

    def _json_key(self, name: str, labels: Labels) -> str:
        suffix = "".join("_" + v.replace("/", "_SLASH_") for _, v in labels)
        return f"{self.scope}/{name}{suffix}"

    def to_prometheus(self) -> str:
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
        return "\n".join(lines) + "\n"

    def _prom_name(self, name: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_:]", "_", f"scoot_{self.scope}_{name}")

    def _header(self, name: str, pname: str, kind: str) -> Iterable[str]:
        text = self._help.get(name, name).replace("\\", "\\\\").replace("\n", "\\n")
        return [f"# HELP {pname} {text}", f"# TYPE {pname} {kind}"]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _prom_labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{re.sub(r"[^a-zA-Z0-9_]", "_", k)}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

"""Metrics registry: the reference's JSON shape and Prometheus text that a strict parser accepts."""

import json
import logging
import math
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scootpy.metrics import Registry

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)"
SAMPLE = re.compile(rf"({NAME})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? ({VALUE})")
HELP = re.compile(rf"# HELP ({NAME}) (?:[^\\\n]|\\[\\n])*")
TYPE = re.compile(rf"# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)")


def check_exposition(text: str) -> dict:
    """Validate Prometheus text format 0.0.4 line by line; return {family: type}."""
    assert text == "" or text.endswith("\n")
    types, current, closed = {}, None, set()
    for line in text.splitlines():
        if line.startswith("# HELP"):
            assert HELP.fullmatch(line), line
            continue
        typed = TYPE.fullmatch(line)
        if typed:
            name = typed.group(1)
            assert name not in types, f"second TYPE line for {name}"
            if current:
                closed.add(current)
            types[name], current = typed.group(2), name
            continue
        sample = SAMPLE.fullmatch(line)
        assert sample, f"not a valid sample line: {line!r}"
        family = _family(sample.group(1), types)
        assert family == current and family not in closed, f"{line!r} is outside its family's block"
    return types


def _family(sample_name: str, types: dict) -> str:
    for suffix in ("_bucket", "_sum", "_count", ""):
        base = sample_name[: len(sample_name) - len(suffix)] if suffix else sample_name
        if sample_name.endswith(suffix) and base in types:
            return base
    raise AssertionError(f"sample {sample_name} has no TYPE line")


def parse_strictly(text: str) -> dict:
    check_exposition(text)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for family in families.values():
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family) -> None:
    by_series = {}
    for s in family.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        by_series.setdefault(key, []).append(s)
    for samples in by_series.values():
        buckets = [s for s in samples if s.name.endswith("_bucket")]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), "bucket counts must be cumulative"
        assert buckets[-1].labels["le"] == "+Inf"
        count = [s.value for s in samples if s.name.endswith("_count")]
        assert count == [counts[-1]]


@pytest.fixture
def registry():
    r = Registry("scheduler")
    r.describe("schedAcceptedJobsGauge", 'jobs accepted\nwith a "quote" and \\ backslash')
    r.set("schedAcceptedJobsGauge", 3)
    r.set("schedWaitingJobsGauge", 2, requestor="team/a")
    r.set("schedWaitingJobsGauge", 1, requestor='odd "name"\n')
    r.inc("workerQueries")
    r.inc("workerQueries", 4)
    r.inc("rpc.errors-total", 1, **{"method": "RunJob", "0weird": "x"})
    r.set("ratio", 0.25)
    r.set("broken", float("nan"))
    r.set("huge", float("inf"))
    for seconds in (0.0002, 0.003, 0.003, 0.2, 7.0, 100.0):
        r.observe("runLatency_ms", seconds)
    r.observe_rpc("RunJob", 0.01)
    r.observe_rpc("GetStatus", 0.02)
    return r


def test_prometheus_text_is_valid(registry):
    families = parse_strictly(registry.to_prometheus())
    assert families["scoot_scheduler_schedAcceptedJobsGauge"].documentation == \
        'jobs accepted\nwith a "quote" and \\ backslash'
    waiting = {s.labels["requestor"]: s.value for s in families["scoot_scheduler_schedWaitingJobsGauge"].samples}
    assert waiting == {"team/a": 2.0, 'odd "name"\n': 1.0}
    latency = families["scoot_scheduler_runLatency_ms"]
    assert latency.type == "histogram"
    samples = {(s.name, s.labels.get("le")): s.value for s in latency.samples}
    assert samples[("scoot_scheduler_runLatency_ms_bucket", "0.005")] == 3
    assert samples[("scoot_scheduler_runLatency_ms_bucket", "60")] == 5
    assert samples[("scoot_scheduler_runLatency_ms_count", None)] == 6
    assert samples[("scoot_scheduler_runLatency_ms_sum", None)] == pytest.approx(107.2062)
    assert math.isnan(families["scoot_scheduler_broken"].samples[0].value)
    errors = text_string_to_metric_families(registry.to_prometheus())
    labels = [s.labels for f in errors if f.name.startswith("scoot_scheduler_rpc_errors") for s in f.samples]
    assert labels == [{"_0weird": "x", "method": "RunJob"}]


def test_counter_values_and_rpc_histograms(registry):
    assert registry.value("workerQueries") == 5
    assert registry.value("rpc_requests_total", method="RunJob") == 1
    assert registry.value("nope") is None
    families = parse_strictly(registry.to_prometheus())
    rpc = families["scoot_scheduler_rpc_latency_seconds"]
    assert {s.labels["method"] for s in rpc.samples} == {"RunJob", "GetStatus"}


def test_json_shape_follows_the_reference(registry):
    data = json.loads(registry.to_json())
    assert data["scheduler/schedAcceptedJobsGauge"] == 3
    assert data["scheduler/schedWaitingJobsGauge_team_SLASH_a"] == 2
    assert data["scheduler/workerQueries"] == 5 and isinstance(data["scheduler/workerQueries"], int)
    assert data["scheduler/ratio"] == 0.25
    assert data["scheduler/broken"] is None and data["scheduler/huge"] is None
    suffixes = {k.rsplit(".", 1)[1] for k in data if k.startswith("scheduler/runLatency_ms.")}
    assert suffixes == {"avg", "count", "max", "min", "sum", "p50", "p90", "p95", "p99", "p999", "p9999"}
    assert data["scheduler/runLatency_ms.count"] == 6
    assert (data["scheduler/runLatency_ms.max"], data["scheduler/runLatency_ms.min"]) == (100000, 0)
    assert data["scheduler/runLatency_ms.sum"] == 107206 and isinstance(data["scheduler/runLatency_ms.sum"], int)
    assert data["scheduler/runLatency_ms.avg"] == pytest.approx(107206.2 / 6)
    # go-metrics interpolates at rank q*(n+1): p50 of [0.2, 3, 3, 200, 7000, 100000] ms is 3 + 0.5 * 197
    assert data["scheduler/runLatency_ms.p50"] == pytest.approx(101.5)
    assert data["scheduler/runLatency_ms.p90"] == data["scheduler/runLatency_ms.p9999"] == pytest.approx(100000)
    assert json.loads(registry.to_json(pretty=True)) == data
    assert "\n  " in registry.to_json(pretty=True)


def test_empty_registry():
    r = Registry("workerserver")
    assert r.to_json() == "{}"
    assert r.to_prometheus() == ""
    assert parse_strictly(r.to_prometheus()) == {}


def test_a_name_keeps_its_first_kind(caplog):
    r = Registry("x")
    r.inc("dual")
    with caplog.at_level(logging.ERROR):
        r.set("dual", 7)
        r.set("dual", 8)
        r.observe("dual", 0.1)
    assert r.value("dual") == 1
    assert len(caplog.records) == 2  # once per misused kind
    assert check_exposition(r.to_prometheus()) == {"scoot_x_dual": "counter"}


def test_validator_rejects_malformed_text():
    bad = [
        "# TYPE a gauge\na 1\n# TYPE a gauge\na 2\n",        # duplicate TYPE
        "# TYPE a gauge\na{x=1} 1\n",                      # unquoted label value
        "# TYPE a gauge\na inf\n",                          # bad value spelling
        "b 1\n",                                            # sample without TYPE
        "# TYPE a gauge\n# TYPE b gauge\na 1\n",            # sample outside its block
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            check_exposition(text)

"""The scheduler's status page in a real headless Chromium while jobs run on real workers: the page's script
polls ``/status.json`` and renders jobs (status, progress, requestor), the first job's tasks (state, worker,
stdout/stderr links that work) and the workers, showing hostile names as text; a second load shows the
state after the jobs were killed."""

import shutil
import subprocess
import tempfile
import urllib.request
from html.parser import HTMLParser
from typing import Dict, List

import pytest

from scootpy.idl import scoot
from tests.hardening_helpers import job_of, start_scheduler, start_workers
from tests.test_worker_support import poll

pytestmark = pytest.mark.timeout(120)

CHROMIUM = shutil.which("chromium")
# Names a hostile client may choose; the page must show them as text, never run them.
HOSTILE_REQUESTOR = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
HOSTILE_TASK = "<b>bold</b>&amp;"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Tables(HTMLParser):
    """Rows of every ``<table id=...>`` body: each row's data-* attributes, cell texts and links."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: Dict[str, List[dict]] = {}
        self.texts: Dict[str, str] = {}
        self._table = self._row = self._cell = self._link = None
        self._text_id = None
        self.tags: Dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = {"attrs": a, "cells": [], "links": []}
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "a" and self._cell is not None:
            self._link = {"href": a.get("href"), "text": ""}
        elif a.get("id") in ("summary", "error", "tasks-title") or tag == "title":
            self._text_id = a.get("id", tag)
            self.texts[self._text_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self._row["links"].append(self._link)
            self._link = None
        elif tag == "td" and self._cell is not None:
            self._row["cells"].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag in ("div", "h2", "title"):
            self._text_id = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._link is not None:
            self._link["text"] += data
        if self._text_id is not None:
            self.texts[self._text_id] += data


def render(procs, url: str) -> Tables:
    """Load ``url`` in headless Chromium, let its scripts run for 3 s of virtual time, parse the DOM."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        proc = procs.start([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=3000",
                            "--dump-dom", url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        dom, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and dom, f"chromium exited with {proc.returncode}"
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    page = Tables()
    page.feed(dom.decode())
    return page


def by_attr(rows: List[dict], key: str) -> Dict[str, dict]:
    return {row["attrs"][key]: row for row in rows}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package chromium; "
                                             ".ci/system-deps installs it)")
def test_status_page_shows_jobs_tasks_and_workers(procs, tmp_path):
    workers = start_workers(procs, tmp_path, 2)
    config = {"Cluster": {"Type": "static", "Workers": [w.addr for w in workers]},
              "Workers": {"Type": "rpc", "PollingPeriod": "50ms"}, "SagaLog": {"Type": "memory"}}
    sched = start_scheduler(procs, tmp_path, config)
    quick = [["sh", "-c", f"echo out-{i}; echo err-{i} >&2"] for i in range(3)]
    with sched.client() as client:
        job_a = job_of([["#! sim execer", "pause"]] + quick, requestor="page-user", tag="page-tag")
        a = client.RunJob(job_a).id
        status_a = poll(lambda: _settled(client.GetStatus(a), 3), timeout=60, interval=0.05, what="3 of 4 done")
        b = client.RunJob(job_of([["#! sim execer", "pause"]], requestor=HOSTILE_REQUESTOR, prefix=HOSTILE_TASK)).id
        poll(lambda: _settled(client.GetStatus(b), 0), timeout=60, interval=0.05, what="job b running")

        page = render(procs, f"http://127.0.0.1:{sched.http}/")
        assert page.texts.get("error", "") == ""
        assert page.texts["summary"].startswith("2 jobs, 2 workers, 2 tasks running")
        jobs = by_attr(page.tables["jobs"], "data-job")
        assert set(jobs) == {a, b}
        assert jobs[a]["cells"][:4] == [a, "IN_PROGRESS", "3/4 (1 running)", "page-user"]
        assert jobs[a]["cells"][4:6] == ["page-tag", "0"]
        assert jobs[b]["cells"][:4] == [b, "IN_PROGRESS", "0/1 (1 running)", HOSTILE_REQUESTOR]
        assert page.texts["title"] == "Scoot scheduler" and "img" not in page.tags and "b" not in page.tags
        assert page.tags["script"] == 1  # the page's own

        assert page.texts["tasks-title"] == f"Tasks of {a}"
        tasks = by_attr(page.tables["tasks"], "data-task")
        assert set(tasks) == set(status_a.taskData)
        addrs = {w.addr for w in workers}
        for task_id, row in tasks.items():
            data = status_a.taskData[task_id]
            state, worker_addr = row["cells"][1:3]
            assert worker_addr in addrs
            assert state == ("RUNNING" if task_id == "t000" else "COMPLETE"), (task_id, row)
            assert row["links"] == [{"href": data.outUri, "text": "stdout"}, {"href": data.errUri, "text": "stderr"}]
        out, err = (urllib.request.urlopen(link["href"] + "&content=true", timeout=10).read()
                    for link in tasks["t002"]["links"])  # the links lead to the worker's log viewer
        assert b"out-1\n" in out and b"err-1\n" in err

        shown = by_attr(page.tables["workers"], "data-worker")
        assert set(shown) == addrs
        assert {row["cells"][1] for row in shown.values()} == {"healthy"}
        assert sorted(row["cells"][2] for row in shown.values()) == sorted([f"{a}/t000", f"{b}/{HOSTILE_TASK}000"])

        client.KillJob(a)
        client.KillJob(b)
        poll(lambda: client.GetSchedulerStatus().currentTasks == 0, timeout=30, what="kills done")
    after = render(procs, f"http://127.0.0.1:{sched.http}/")
    assert after.texts["summary"].startswith("0 jobs, 2 workers, 0 tasks running")
    assert after.tables["jobs"] == [] and after.tables["tasks"] == []
    assert {row["cells"][2] for row in after.tables["workers"]} == {""}


def _settled(status, done: int):
    """``status`` once exactly ``done`` tasks are COMPLETED and the rest are running; else None."""
    states = list(status.taskStatus.values())
    running = [d for d in status.taskData.values() if d.status == scoot.RunStatusState.RUNNING]
    finished = states.count(scoot.Status.COMPLETED)
    return status if finished == done and len(running) == len(states) - done else None

"""WSGI app for the scheduler's status page: jobs, their tasks and the workers, refreshed live.

The page is static HTML plus a little JavaScript that polls ``/status.json`` once a second; the JSON comes
from a ``snapshot()`` callable of the scheduler, so this module knows nothing of the scheduler's internals.
Expected snapshot shape::

    {"scheduler": {"uptime_s": float, "current_tasks": int, "max_tasks": int},
     "jobs": [{"id", "status", "requestor", "tag", "priority", "age_s", "tasks_total", "tasks_done",
               "tasks_running", "tasks": [{"id", "state", "worker", "run_id", "exit_code", "out_uri",
               "err_uri", "error"}]}],
     "workers": [{"id", "state", "task"}]}
"""

import json
from importlib import resources
from typing import Callable, Iterable

from scootpy.admin import respond

Snapshot = Callable[[], dict]


def status_page_app(snapshot: Snapshot) -> Callable[[dict, Callable], Iterable[bytes]]:
    """Return a WSGI app serving ``/`` (the page) and ``/status.json`` (the data)."""
    page = resources.files(__package__).joinpath("status.html").read_bytes()

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return respond(start_response, "405 Method Not Allowed", b"method not allowed\n")
        if path == "/":
            return respond(start_response, "200 OK", page, "text/html; charset=utf-8")
        if path == "/status.json":
            body = json.dumps(snapshot(), sort_keys=True).encode()
            return respond(start_response, "200 OK", body, "application/json; charset=utf-8",
                           headers=[("Cache-Control", "no-store")])
        return respond(start_response, "404 Not Found", b"not found\n")

    return app

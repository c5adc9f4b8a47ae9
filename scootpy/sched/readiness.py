"""Readiness probing of suspended nodes (spec §6.1), one greenlet per node, off the scheduler loop."""

import logging
from typing import Any, Callable

import gevent

log = logging.getLogger(__name__)


def probe_until_ready(node_id: str, make_client: Callable[[str], Any], probe: Callable[[Any], bool],
                      timeout: float, backoff: float, report: Callable[[bool], None],
                      stopping: Callable[[], bool], initial_delay: float = 0.0) -> None:
    """Probe ``node_id`` until ready (``report(True)``) or it gives up for good (``report(False)``).

    A probe that fails, times out or finds the worker still initialising is retried after ``backoff`` s;
    a worker that reports an initialisation error, or one no client can be made for, gives up. A node that
    just failed a try waits ``initial_delay`` s first, so its retried task goes to another node meanwhile.
    """
    if initial_delay:
        gevent.sleep(initial_delay)
    while not stopping():
        client = None
        try:
            client = make_client(node_id)
            with gevent.Timeout(timeout):
                ready = probe(client)
        except gevent.Timeout:
            ready = False
        except Exception as e:
            log.warning("node %s: gave up on readiness: %s", node_id, e)
            report(False)
            return
        finally:
            if client is not None:
                client.close()
        if ready:
            report(True)
            return
        gevent.sleep(backoff)

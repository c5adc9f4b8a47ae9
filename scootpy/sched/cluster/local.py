"""Local process discovery, as the reference does it: run ``ps x`` and pick addresses out of command lines.

A line matches the unanchored pattern ``<proc>.*<flag>(?: +|=)([^ ]*)``; the capture is the node id, and
because ``.*`` is greedy the last ``<flag>`` on the line wins. Used by the ``local`` cluster type
(``workerserver``, ``thrift_addr``, every second) and by anything else that finds local peers the same way
(e.g. workers looking for an ``apiserver``'s ``http_addr``).
"""

import logging
import re
import subprocess
from typing import List, Optional

from scootpy.sched.cluster.membership import Membership

log = logging.getLogger(__name__)

PS_TIMEOUT_S = 10.0
LOCAL_INTERVAL_S = 1.0


def process_pattern(proc: str, flag: str) -> "re.Pattern[str]":
    """The reference's discovery regex for processes named ``proc`` started with ``flag``."""
    return re.compile(f"{re.escape(proc)}.*{re.escape(flag)}(?: +|=)([^ ]*)")


def parse_ps(text: str, pattern: "re.Pattern[str]") -> List[str]:
    """Addresses captured by ``pattern`` from ``ps`` output, in line order; empty captures are dropped."""
    found = []
    for line in text.split("\n"):
        match = pattern.search(line)
        if match and match.group(1):
            found.append(match.group(1))
    return found


def ps_fetch(proc: str, flag: str) -> Optional[List[str]]:
    """Run ``ps x`` once and return the addresses found, or None if ``ps`` could not be run.

    ``ww`` keeps lines whole even when COLUMNS is set (readline sets it in the C environment), matching
    what the reference's piped ``ps x`` sees.
    """
    try:
        done = subprocess.run(["ps", "xww"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=PS_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("ps x failed: %s", e)
        return None
    if done.returncode != 0:
        log.warning("ps x exited with %d", done.returncode)
        return None
    return parse_ps(done.stdout.decode("utf-8", "replace"), process_pattern(proc, flag))


def local_membership(proc: str = "workerserver", flag: str = "thrift_addr",
                     interval: float = LOCAL_INTERVAL_S) -> Membership:
    """Workers running on this machine under this user, found with ``ps x`` every ``interval`` seconds."""
    return Membership(lambda: ps_fetch(proc, flag), interval, "local")

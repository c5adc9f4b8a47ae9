"""Local process discovery, as the reference does it with ``ps x``: pick addresses out of command lines.

A command line matches the unanchored pattern ``<proc>.*<flag>(?: +|=)([^ ]*)``; the capture is the node
id, and because ``.*`` is greedy the last ``<flag>`` on the line wins. The command lines are those of
this user's processes, read from ``/proc`` (about 7x cheaper than running ``ps``, which matters every
second) or, where there is no ``/proc``, from ``ps xww``. Used by the ``local`` cluster type
(``workerserver``, ``thrift_addr``, every second) and by anything else that finds local peers the same way
(e.g. workers looking for an ``apiserver``'s ``http_addr``).
"""

import logging
import os
import re
import subprocess
from typing import List, Optional

from scootpy.sched.cluster.membership import Membership

log = logging.getLogger(__name__)

PS_TIMEOUT_S = 10.0
LOCAL_INTERVAL_S = 1.0
PROC = "/proc"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


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


def proc_command_lines() -> List[str]:
    """Command lines of this user's processes from /proc, arguments joined by spaces as ``ps`` shows them."""
    uid = os.geteuid()
    lines = []
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"{PROC}/{name}").st_uid != uid:
                continue
            with open(f"{PROC}/{name}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:  # the process ended meanwhile
            continue
        args = raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")
        # as procps shows arguments: newlines become spaces, other control characters "?"
        lines.append(" ".join(_CONTROL.sub("?", a).replace("\n", " ") for a in args))
    return lines


def ps_command_lines() -> Optional[List[str]]:
    """Lines of ``ps xww`` (``ww``: never cut at COLUMNS, which readline may set), or None if it failed."""
    try:
        done = subprocess.run(["ps", "xww"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=PS_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("ps x failed: %s", e)
        return None
    if done.returncode != 0:
        log.warning("ps x exited with %d", done.returncode)
        return None
    return done.stdout.decode("utf-8", "replace").split("\n")


def ps_fetch(proc: str, flag: str) -> Optional[List[str]]:
    """Addresses of this user's ``proc`` processes started with ``flag`` (what ``ps x`` would show).

    None if the processes cannot be listed right now.
    """
    try:
        lines: Optional[List[str]] = proc_command_lines() if os.path.isdir(f"{PROC}/self") else ps_command_lines()
    except OSError as e:
        log.warning("listing %s failed: %s", PROC, e)
        lines = None
    return None if lines is None else parse_ps("\n".join(lines), process_pattern(proc, flag))


def local_membership(proc: str = "workerserver", flag: str = "thrift_addr",
                     interval: float = LOCAL_INTERVAL_S) -> Membership:
    """Workers running on this machine under this user, looked for every ``interval`` seconds."""
    return Membership(lambda: ps_fetch(proc, flag), interval, "local")

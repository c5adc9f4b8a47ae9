"""Start child processes fast without blocking the gevent hub, and wait for them cooperatively.

gevent's own ``Popen`` forks in Python (about 4 ms per spawn); the standard library's uses ``vfork`` (well
under 1 ms) but gevent's monkey-patching disables it. We load a private, unpatched copy of the standard
``subprocess`` module for spawning, and wait for exits with a libev child watcher, so the worker's
per-run overhead stays small and other connections keep being served.
"""

import ctypes
import importlib.util
import os
import sysconfig
import types
from typing import Any, Tuple

import gevent
from gevent import monkey


def _private_subprocess() -> types.ModuleType:
    path = os.path.join(sysconfig.get_paths()["stdlib"], "subprocess.py")
    spec = importlib.util.spec_from_file_location("_scootpy_stdlib_subprocess", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # gevent's os.close defers closing pipes to the event loop; the stdlib's exec handshake needs it now.
    plain_os = types.ModuleType("os")
    plain_os.__dict__.update(os.__dict__)
    plain_os.close = monkey.get_original("os", "close")
    module.os = plain_os
    return module


_subprocess = _private_subprocess()
DEVNULL = _subprocess.DEVNULL
close_now = monkey.get_original("os", "close")


_PR_SET_CHILD_SUBREAPER = 36
_subreaper = False


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux), so runs' escapees can be found and
    reaped. Only for a process whose other children all stay in its own process group (the worker)."""
    global _subreaper
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        _subreaper = False
    return _subreaper


def is_subreaper() -> bool:
    return _subreaper


def install_child_watching() -> None:
    """Let the hub learn about child exits; call before the first ``spawn``."""
    gevent.get_hub().loop.install_sigchld()


def spawn(argv: Any, **popen_args: Any) -> Tuple[Any, Any]:
    """Start a process (a standard ``subprocess.Popen``) and watch for its exit.

    Returns ``(popen, watcher)``; pass both to ``wait_exit``. The watcher exists before the hub runs again,
    so an exit can never be reaped unseen.
    """
    install_child_watching()
    popen = _subprocess.Popen(argv, **popen_args)
    return popen, gevent.get_hub().loop.child(popen.pid, False)


def wait_exit(popen: Any, watcher: Any) -> int:
    """Wait cooperatively for ``popen`` to exit; return and record its returncode (negative = signal)."""
    try:
        gevent.get_hub().wait(watcher)
    finally:
        watcher.close()
    popen.returncode = os.waitstatus_to_exitcode(watcher.rstatus)
    return popen.returncode

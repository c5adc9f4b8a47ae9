"""SIGINT/SIGTERM as an exception in the main thread, for the cluster-running tools' clean teardown."""

import signal


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the text is the signal's name."""


def _raise(signum: int, _frame: object) -> None:
    ignore()
    raise Interrupted(signal.Signals(signum).name)


def install() -> None:
    """Turn the first SIGINT or SIGTERM into ``Interrupted``; later ones are ignored during teardown."""
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


def ignore() -> None:
    """Ignore SIGINT and SIGTERM (while tearing down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

"""Shared test fixtures: gevent patching, free loopback ports, and real processes that are always stopped."""

from gevent import monkey

monkey.patch_all()

import pytest  # noqa: E402

from tests.procs import Processes  # noqa: E402


@pytest.fixture
def procs():
    """Start real processes (``procs.start([...])``); every one is stopped, with its group, at teardown."""
    group = Processes()
    try:
        yield group
    finally:
        group.stop_all()

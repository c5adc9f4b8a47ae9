"""The worker's view of snapshots: check an input snapshot out, ingest a run's log files as the output.

A thin adapter over ``scootpy.snapshots.gitdb.GitDB``. An empty snapshot id gets a fresh empty directory.
Failures carry the reference's exit codes: checkout errors use the snapshot error's own code (211, 212,
...) or 210; ingest errors are 250. With a metrics registry, each snapshot checkout and ingest is timed
(``snapshot_checkout_seconds``, ``snapshot_ingest_seconds``, labelled ``result="ok"|"error"``).
"""

import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from scootpy.metrics import Registry
from scootpy.snapshots.ids import SnapshotError

log = logging.getLogger(__name__)

CHECKOUT_FAILURE = 210
POST_EXEC_FAILURE = 250


class FilerError(Exception):
    """A snapshot step failed; ``str()`` is the status error text, ``exit_code`` the FAILED code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Checkout:
    """A directory the command runs in, owned until ``release()``."""

    def __init__(self, path: str, db=None):
        self.path = path
        self._db = db

    def release(self) -> None:
        """Give the directory back; a failure is logged, never turned into a run failure."""
        try:
            if self._db is not None:
                self._db.release_checkout(self.path)
            else:
                shutil.rmtree(self.path, ignore_errors=True)
        except Exception:  # the run's result stands whatever happens to its checkout
            log.exception("releasing checkout %s failed", self.path)


class Filer:
    """Checkouts and output ingestion for runs, over a GitDB (``db`` None until initialized)."""

    def __init__(self, tmp_dir: str, db=None, metrics: Optional[Registry] = None):
        self.tmp_dir = tmp_dir
        self.db = db
        self.metrics = metrics
        if metrics is not None:
            for step in ("checkout", "ingest"):
                metrics.describe(f"snapshot_{step}_seconds", f"Time to {step} a run's snapshot, by result",
                                 in_json=False)

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        started, result = time.monotonic(), "error"
        try:
            yield
            result = "ok"
        finally:
            if self.metrics is not None:
                self.metrics.observe(f"snapshot_{step}_seconds", time.monotonic() - started, result=result)

    def checkout(self, snapshot_id: str) -> Checkout:
        """Check out ``snapshot_id`` ("" = a new empty directory); raise FilerError."""
        if not snapshot_id:
            return Checkout(tempfile.mkdtemp(prefix="invoke_nop_checkout", dir=self.tmp_dir))
        try:
            with self._timed("checkout"):
                return Checkout(self.db.checkout(snapshot_id), self.db)
        except SnapshotError as e:
            raise FilerError(str(e), e.exit_code or CHECKOUT_FAILURE) from None
        except OSError as e:
            raise FilerError(str(e), CHECKOUT_FAILURE) from None

    def ingest(self, files: Dict[str, str]) -> str:
        """Snapshot a directory holding exactly ``files`` (snapshot name -> local path); return its id.
        Small plain files are snapshotted in place; others are linked into a staging directory first."""
        with self._timed("ingest"):
            try:
                snapshot_id = self.db.ingest_files(files)
            except (SnapshotError, OSError) as e:
                raise FilerError(f"error ingesting results: {e}", POST_EXEC_FAILURE) from None
            return snapshot_id if snapshot_id is not None else self._ingest_staged(files)

    def _ingest_staged(self, files: Dict[str, str]) -> str:
        staging = tempfile.mkdtemp(prefix="invoke", dir=self.tmp_dir)
        try:
            try:
                for name, path in files.items():
                    _link_or_copy(path, os.path.join(staging, name))
            except OSError as e:
                raise FilerError(f"error staging ingestion for {name}: {e}", POST_EXEC_FAILURE) from None
            try:
                return self.db.ingest_dir(staging)
            except (SnapshotError, OSError) as e:
                raise FilerError(f"error ingesting results: {e}", POST_EXEC_FAILURE) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)

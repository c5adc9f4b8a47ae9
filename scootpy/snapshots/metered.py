"""``MeteredStore``: a bundle store wrapper that counts the bytes moved to and from the real store.

Wrap the store a GitDB uses (``GitDB(repo, store=MeteredStore(store, metrics))``) to export how many bundle
bytes checkouts downloaded (``snapshot_download_bytes_total``) and ingests uploaded
(``snapshot_upload_bytes_total``). Everything else is passed through unchanged.
"""

import os
from typing import Any, BinaryIO, Optional

from scootpy.metrics import Registry

DOWNLOAD_BYTES = "snapshot_download_bytes_total"
UPLOAD_BYTES = "snapshot_upload_bytes_total"


class MeteredStore:
    """Counts bundle bytes read through ``open_read`` and written through ``write`` into ``metrics``."""

    def __init__(self, store: Any, metrics: Registry):
        self.store, self.metrics = store, metrics
        metrics.describe(DOWNLOAD_BYTES, "Bundle bytes read from the bundlestore (snapshot checkouts)", in_json=False)
        metrics.describe(UPLOAD_BYTES, "Bundle bytes written to the bundlestore (snapshot ingests)", in_json=False)
        metrics.inc(DOWNLOAD_BYTES, 0)
        metrics.inc(UPLOAD_BYTES, 0)

    @property
    def root(self) -> str:
        return self.store.root

    def exists(self, name: str) -> bool:
        return self.store.exists(name)

    def open_read(self, name: str) -> "_CountingReader":
        return _CountingReader(self.store.open_read(name), self.metrics)

    def write(self, name: str, fileobj: BinaryIO, ttl: Optional[float] = None) -> bool:
        """Write through to the store; a successful write counts the bytes sent once (retries aside)."""
        size = _remaining(fileobj)
        if size is None:
            tally = _Tally(fileobj)
            written = self.store.write(name, tally, ttl)
            size = tally.total
        else:
            written = self.store.write(name, fileobj, ttl)
        self.metrics.inc(UPLOAD_BYTES, size)
        return written


class _CountingReader:
    """A readable stream that adds every byte read to the download counter."""

    def __init__(self, stream: Any, metrics: Registry):
        self._stream, self._metrics = stream, metrics

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if data:
            self._metrics.inc(DOWNLOAD_BYTES, len(data))
        return data

    def readinto(self, buf: Any) -> int:
        count = self._stream.readinto(buf)
        if count:
            self._metrics.inc(DOWNLOAD_BYTES, count)
        return count

    def close(self) -> None:
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __enter__(self) -> "_CountingReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Tally:
    """A non-seekable source, read through while counting its bytes."""

    def __init__(self, stream: BinaryIO):
        self._stream, self.total = stream, 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.total += len(data)
        return data


def _remaining(fileobj: BinaryIO) -> Optional[int]:
    """Bytes from the current position to the end of a seekable file; None when it is not seekable."""
    try:
        if not fileobj.seekable():
            return None
        start = fileobj.tell()
        end = fileobj.seek(0, os.SEEK_END)
        fileobj.seek(start)
        return max(0, end - start)
    except (AttributeError, OSError, ValueError):
        return None

"""Start, stop and ``with`` support shared by our gevent servers (Thrift and admin HTTP)."""

from typing import Any, Tuple


class GeventServerLifecycle:
    """Mixin for a class that keeps its gevent ``BaseServer`` in ``self._server``."""

    _server: Any

    @property
    def address(self) -> Tuple[str, int]:
        return self._server.address[:2]

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> None:
        self._server.start()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop accepting, give work in flight ``timeout`` seconds to finish, then drop the connections."""
        self._server.stop(timeout=timeout)

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

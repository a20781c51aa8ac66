"""An ASGI app under a real uvicorn in a thread, on a free local port, for tests that need real
HTTP (fti serve, the Airflow api-server app whose pages call its own REST API)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STARTUP_GUARD_S = 60.0  # only a server that cannot start takes this long


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(app: Any, lifespan: str = "auto") -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL. ``lifespan="off"`` for an app
    whose startup already ran (inside a TestClient)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_GUARD_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()

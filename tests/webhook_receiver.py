"""A local HTTP receiver for webhook alerts: a server on a free port that keeps each POSTed
JSON body (tests/dags/test_deadlines.py, tests/integration/test_realized.py)."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

HANG_GUARD = 120  # seconds: only a hung receiver or callback gets this far


class Receiver:
    """An HTTP server on a free local port that keeps each POSTed JSON body."""

    def __init__(self) -> None:
        self.bodies: queue.Queue[dict[str, Any]] = queue.Queue()
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                bodies.put(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/fti?token=secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self) -> dict[str, Any]:
        """The next body received (the hang guard only fails a receiver that never gets one)."""
        try:
            return self.bodies.get(timeout=HANG_GUARD)
        except queue.Empty:
            pytest.fail(f"no alert reached the receiver in {HANG_GUARD} s")

    def received(self) -> list[dict[str, Any]]:
        """Every body received so far (the senders are synchronous: done before they return)."""
        found = []
        while not self.bodies.empty():
            found.append(self.bodies.get_nowait())
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

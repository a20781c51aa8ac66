"""The load generator of ``bench_serving.py``: asyncio with raw keep-alive HTTP/1.1 connections
(h11 frames the requests and parses the answers), requests built before the clock starts,
latency from writing a request to the last byte of its answer."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from serving_servers import Server


def request_events(server: Server, path: str, body: bytes) -> tuple[Any, ...]:
    """The h11 events of one POST (built before the clock starts)."""
    import h11

    headers = [
        ("host", f"127.0.0.1:{server.port}"),
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        *server.headers,
    ]
    return (h11.Request(method="POST", target=path, headers=headers), h11.Data(data=body))


class Failed(Exception):
    pass


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Any, request: bytes
) -> tuple[int, bytes]:
    """Send one framed request on a keep-alive connection; read its whole answer."""
    import h11

    writer.write(request)
    status, body = 0, bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                raise Failed("the server closed the connection")
            connection.receive_data(data)
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            connection.start_next_cycle()
            return status, bytes(body)


async def _load(
    port: int, requests: list[tuple[Any, ...]], concurrency: int
) -> tuple[list[float], float]:
    """Send ``requests`` over ``concurrency`` keep-alive connections; each connection sends
    its next request when its previous answer is in. Returns latencies (s) and wall time."""
    import h11

    latencies = [0.0] * len(requests)
    cursor = iter(range(len(requests)))

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = h11.Connection(h11.CLIENT)
        try:
            for i in cursor:
                head, data = requests[i]
                framed = (
                    connection.send(head)
                    + connection.send(data)
                    + connection.send(h11.EndOfMessage())
                )
                clock = time.perf_counter()
                status, body = await _exchange(reader, writer, connection, framed)
                latencies[i] = time.perf_counter() - clock
                if status != 200:
                    raise Failed(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        finally:
            writer.close()

    clock = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - clock


def load(port: int, requests: list[tuple[Any, ...]], concurrency: int) -> tuple[list[float], float]:
    return asyncio.run(_load(port, requests, concurrency))

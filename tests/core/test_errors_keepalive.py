"""An unexpected error is a 500 problem that leaves the keep-alive connection open (Starlette's
last-resort handler re-raised, and uvicorn then closed the connection under the client), and a
405 names every method the path serves. Over a real socket to a real uvicorn."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from aethercrown.app import create_app
from aethercrown.settings import Settings
from tests.servers import free_port


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[FastAPI, int]]:
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("an unexpected failure")

    app.add_api_route("/test/boom", boom)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield app, port
    server.should_exit = True
    thread.join(timeout=10)


def _exchange(conn: socket.socket, request: bytes) -> bytes:
    """Send one request and read one complete response (by Content-Length)."""
    conn.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_500_keeps_the_connection_open(served: tuple[FastAPI, int]) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        first = _exchange(conn, b"GET /test/boom HTTP/1.1\r\nHost: t\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 500")
        assert b"application/problem+json" in first
        assert b"urn:aethercrown:problem:internal-error" in first
        second = _exchange(conn, b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
        assert second.startswith(b"HTTP/1.1 200"), second


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (b"/api/v1/enterprise/usage/meters", b"GET, POST"),
        # Also matched by /tasks/{task_id} (GET), but this path names its own route.
        (b"/api/v1/optimization/tasks/schedule", b"POST"),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    served: tuple[FastAPI, int], path: bytes, allowed: bytes
) -> None:
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        answer = _exchange(conn, b"DELETE " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405")
    allow = next(
        line.split(b":", 1)[1].strip()
        for line in answer.split(b"\r\n")
        if line.lower().startswith(b"allow:")
    )
    assert allow == allowed

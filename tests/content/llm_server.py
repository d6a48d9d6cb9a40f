"""A real OpenAI-compatible chat server on loopback, scripted per test: answers, 429 with
Retry-After, 500s, slow answers (timeouts), malformed JSON, too-short output. It records every
request body so tests can read the prompts the platform sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the assistant message; None with status 200 = malformed body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None  # a body sent as is


def answer(data: dict[str, Any] | str) -> Reply:
    return Reply(content=data if isinstance(data, str) else json.dumps(data))


class LLMServer:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[float] = []
        self.lock = threading.Lock()
        self.default: Reply | None = None
        self.base_url = ""

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self.script.extend(replies)

    def _next(self) -> Reply:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            if self.default is not None:
                return self.default
        return Reply(status=500, content="script exhausted")


def _handler(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with server.lock:
                server.requests.append(body)
                server.request_times.append(time.monotonic())
            reply = server._next()
            if reply.delay:
                time.sleep(reply.delay)
            if reply.raw is not None:
                payload = reply.raw
            elif reply.status != 200:
                payload = json.dumps({"error": {"message": reply.content or "error"}}).encode()
            else:
                payload = json.dumps(
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "test-model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                ).encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler


@contextmanager
def llm_server() -> Iterator[LLMServer]:
    state = LLMServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()

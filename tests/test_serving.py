"""The HTTP protocol `aethercrown serve` runs sets TCP_NODELAY, also on the kind of listening
socket uvicorn binds for --workers N (proto 0, which asyncio would leave with Nagle on), and
answers what its parser refuses in problem+json."""

from __future__ import annotations

import asyncio
import json
import socket

from uvicorn.config import Config
from uvicorn.server import ServerState

from aethercrown.serving import NoDelayHttpToolsProtocol


async def _app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
    pass


def test_connections_get_tcp_nodelay_on_a_workers_style_socket() -> None:
    async def scenario() -> int:
        config = Config(app=_app, http="aethercrown.serving:NoDelayHttpToolsProtocol")
        config.load()
        assert config.http_protocol_class is NoDelayHttpToolsProtocol
        state = ServerState()
        made: list[NoDelayHttpToolsProtocol] = []

        def factory() -> NoDelayHttpToolsProtocol:
            protocol = NoDelayHttpToolsProtocol(config=config, server_state=state, app_state={})
            made.append(protocol)
            return protocol

        listener = socket.socket(family=socket.AF_INET)  # as uvicorn's bind_socket: proto 0
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert listener.proto == 0
        server = await asyncio.get_running_loop().create_server(factory, sock=listener)
        try:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            for _ in range(500):
                if made:
                    break
                await asyncio.sleep(0.01)
            accepted = made[0].transport.get_extra_info("socket")
            value = int(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()
            made[0].transport.close()
            return value
        finally:
            server.close()

    assert asyncio.run(scenario()) == 1


def test_a_request_the_parser_refuses_is_answered_in_problem_json() -> None:
    async def scenario() -> bytes:
        config = Config(app=_app, http="aethercrown.serving:NoDelayHttpToolsProtocol")
        config.load()
        state = ServerState()
        server = await asyncio.get_running_loop().create_server(
            lambda: NoDelayHttpToolsProtocol(config=config, server_state=state, app_state={}),
            "127.0.0.1",
            0,
        )
        try:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            writer.write(b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n")  # spaces in the target
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), timeout=10)
            writer.close()
            return answer
        finally:
            server.close()

    head, _, body = asyncio.run(scenario()).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["type"] == "urn:aethercrown:problem:malformed-request"

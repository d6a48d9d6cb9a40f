"""The HTTP protocol `aethercrown serve` runs sets TCP_NODELAY, also on the kind of listening
socket uvicorn binds for --workers N (proto 0, which asyncio would leave with Nagle on)."""

from __future__ import annotations

import asyncio
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

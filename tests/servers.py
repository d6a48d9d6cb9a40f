"""Run the real ``aethercrown serve`` in a subprocess for tests that need separate processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(env: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    full_env = {**os.environ, "AETHERCROWN_RUN_AUTOMATION": "false", **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aethercrown", "serve", "--port", str(port), *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


BANNER_TITLE = "AetherCrown is running"


def read_banner(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The labelled lines `serve` prints on stdout once it answers, as {label: first word of the
    value} (a key, or a URL); waits for them."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(BANNER_TITLE):
            break
    else:
        raise AssertionError("serve ended without printing its banner")
    fields: dict[str, str] = {}
    for line in proc.stdout:
        if not line.strip():
            return fields
        label, _, value = line.strip().partition(":")
        fields[label] = value.split()[0] if label != "keys" else value.strip()
    return fields

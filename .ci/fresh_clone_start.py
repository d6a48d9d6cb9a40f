#!/usr/bin/env python3
"""CI: the README's first command (`make run`) in a fresh clone of the commit must reach a working
platform. Clones HEAD into a new temporary directory, runs the command there as a new user would
(no AETHERCROWN_* settings but a free port), waits for /readyz and the keys it prints, reads the
demo tenant's figures through the API with the demo tenant's key, and stops it (its whole process
group). Exits non-zero, with the run's output, on any failure. Standard library only: it runs
before any virtualenv exists.

It also reports how long each phase took: install (until make's stamp file appears), start-up and
migrations (until the migrations' line), demo load (the loader's own figure) and the total to a
ready platform, with the load average.

  python3 .ci/fresh_clone_start.py [--timeout SECONDS] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TITLE = "AetherCrown is running"


def readme_first_command(readme: Path) -> str:
    """The first line of the README's first fenced code block, without its comment."""
    block = re.search(r"^```[a-z]*\n(.*?)^```", readme.read_text(), re.S | re.M)
    if block is None:
        sys.exit("README.md has no code block: what does a new user run?")
    first = next(line for line in block.group(1).splitlines() if line.strip())
    return first.split("#", 1)[0].strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, key: str | None = None, body: object = None, timeout: float = 5
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    # No proxy for loopback, whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def banner(stdout: str) -> dict[str, str] | None:
    """The labelled lines `serve` prints once it answers ({label: first word of the value})."""
    if TITLE not in stdout:
        return None
    fields: dict[str, str] = {}
    for line in stdout.split(TITLE, 1)[1].splitlines()[1:]:
        if not line.strip():
            return fields
        label, _, value = line.strip().partition(":")
        fields[label] = value.split()[0] if value.split() else ""
    return None  # not all printed yet


def stop(proc: subprocess.Popen[bytes]) -> None:
    """The command's whole process group: make, the server and its workers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=900, help="seconds to reach /readyz")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its logs")
    args = parser.parse_args()

    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="aethercrown-fresh-clone-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", "--detach", commit], check=True)
    command = readme_first_command(clone / "README.md")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A new user's shell: none of CI's AETHERCROWN_* settings (test database, Redis), a free port.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETHERCROWN_")}
    env["AETHERCROWN_PORT"] = str(port)
    out_path, err_path = work / "stdout.log", work / "stderr.log"
    print(f"fresh clone of {commit[:12]} in {clone}: `{command}` on port {port}", flush=True)

    started = time.monotonic()
    wall_start = time.time()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            command, shell=True, cwd=clone, env=env, stdout=out, stderr=err, start_new_session=True
        )
    failure: str | None = None
    migrated_at: float | None = None
    try:
        keys: dict[str, str] | None = None
        while True:
            elapsed = time.monotonic() - started
            stderr = err_path.read_text(errors="replace")
            if migrated_at is None and "database migrated" in stderr:
                migrated_at = elapsed
            if keys is None:
                keys = banner(out_path.read_text(errors="replace"))
            if keys is not None and http("GET", f"{base}/readyz")[0] == 200:
                break
            if proc.poll() is not None:
                failure = f"`{command}` exited with {proc.returncode} before it was ready"
                break
            if elapsed > args.timeout:
                failure = f"not ready after {args.timeout:.0f} s"
                break
            time.sleep(0.5)
        ready_at = time.monotonic() - started
        if failure is None:
            assert keys is not None
            failure = check(base, keys)
    finally:
        stop(proc)

    stderr = err_path.read_text(errors="replace")
    if failure is not None:
        print(f"FAILED: {failure}", file=sys.stderr)
        print("--- stdout ---\n" + out_path.read_text(errors="replace")[-5000:], file=sys.stderr)
        print("--- stderr ---\n" + stderr[-10000:], file=sys.stderr)
        print(f"(clone and logs kept in {work})", file=sys.stderr)
        return 1

    stamp = clone / ".venv" / ".installed-stamp"
    install = stamp.stat().st_mtime - wall_start if stamp.exists() else float("nan")
    demo = re.search(r"\(([\d.]+) s in all\)", stderr)
    load = os.getloadavg()
    print(
        f"fresh clone start OK: ready in {ready_at:.0f} s — install {install:.0f} s, "
        f"start-up and migrations {(migrated_at or float('nan')) - install:.0f} s, "
        f"demo load {float(demo.group(1)) if demo else float('nan'):.0f} s; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    if args.keep:
        print(f"(clone and logs kept in {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def check(base: str, keys: dict[str, str]) -> str | None:
    """What a new user does next, through the API: None if it works, else what failed."""
    for label in ("console", "API docs", "operator admin key", "demo tenant key"):
        if not keys.get(label):
            return f"the start did not print its {label}: {keys}"
    if not keys["operator admin key"].startswith("aca_"):
        return f"operator admin key looks wrong: {keys['operator admin key'][:8]}…"
    # The first summary computes and stores the tenant's monthly series while the in-process
    # automation runs its first tick on the same SQLite file: it can take tens of seconds.
    asked = time.monotonic()
    status, body = http(
        "POST",
        f"{base}/api/v1/dashboard/executive/summary",
        keys["demo tenant key"],
        {},
        timeout=120,
    )
    if status != 200:
        return f"demo tenant's executive summary answered {status}: {body[:500]!r}"
    latest = json.loads(body).get("latest") or {}
    if not latest.get("customers"):
        return f"the demo tenant's summary shows no customers: {latest}"
    print(
        f"demo tenant read in {time.monotonic() - asked:.1f} s: {latest['customers']} customers, "
        f"MRR {latest.get('mrr')} (minor units) in {latest.get('month')}",
        flush=True,
    )
    return None


if __name__ == "__main__":
    sys.exit(main())

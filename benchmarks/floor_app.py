"""Floors for api_overhead.py: the least an authenticated tenant read can do in FastAPI.

One header dependency looked up in an in-memory dict and one primary-key SELECT on a shared
in-memory sqlite3 connection: no middleware, ORM, rate limit, metrics or logs. If this does not
reach a share of the bare endpoint, no authenticated read served by FastAPI on the same machine
will. Two forms of the same read:

- ``/floor/{id}``: the dependency is a plain ``def``, so FastAPI runs it in a worker thread on
  every request (a thread hop each time);
- ``/floor-async/{id}``: the same dependency written ``async def``, run on the event loop: the
  fair floor, since the platform's authentication runs on the loop too.

The tenant id and key it accepts come from FLOOR_TENANT_ID and FLOOR_KEY.
"""

import os
import sqlite3
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException

TENANT_ID = os.environ.get("FLOOR_TENANT_ID", "t")
KEYS = {f"Bearer {os.environ.get('FLOOR_KEY', 'k')}": TENANT_ID}

app = FastAPI()
db = sqlite3.connect(":memory:", check_same_thread=False)
db.execute("CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT, slug TEXT, tier TEXT)")
db.execute("INSERT INTO tenants VALUES (?, 'Bench', 'bench', 'enterprise')", (TENANT_ID,))


def principal(authorization: Annotated[str, Header()]) -> str:
    tenant_id = KEYS.get(authorization)
    if tenant_id is None:
        raise HTTPException(401)
    return tenant_id


async def principal_on_loop(authorization: Annotated[str, Header()]) -> str:
    return principal(authorization)


def read_row(tenant_id: str, caller: str) -> dict[str, str]:
    row = db.execute(
        "SELECT id, name, slug, tier FROM tenants WHERE id = ?", (tenant_id,)
    ).fetchone()
    if row is None or row[0] != caller:
        raise HTTPException(404)
    return {"id": row[0], "name": row[1], "slug": row[2], "tier": row[3]}


@app.get("/floor/{tenant_id}")
async def read(tenant_id: str, caller: Annotated[str, Depends(principal)]) -> dict[str, str]:
    return read_row(tenant_id, caller)


@app.get("/floor-async/{tenant_id}")
async def read_async(
    tenant_id: str, caller: Annotated[str, Depends(principal_on_loop)]
) -> dict[str, str]:
    return read_row(tenant_id, caller)

"""A floor for api_overhead.py: the least an authenticated tenant read can do in FastAPI.

One header dependency looked up in an in-memory dict and one primary-key SELECT on a shared
in-memory sqlite3 connection: no middleware, ORM, rate limit, metrics or logs. If this does not
reach a share of the bare endpoint, no authenticated read served by FastAPI on the same machine
will. The tenant id and key it accepts come from FLOOR_TENANT_ID and FLOOR_KEY.
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


@app.get("/floor/{tenant_id}")
async def read(tenant_id: str, caller: Annotated[str, Depends(principal)]) -> dict[str, str]:
    row = db.execute(
        "SELECT id, name, slug, tier FROM tenants WHERE id = ?", (tenant_id,)
    ).fetchone()
    if row is None or row[0] != caller:
        raise HTTPException(404)
    return {"id": row[0], "name": row[1], "slug": row[2], "tier": row[3]}

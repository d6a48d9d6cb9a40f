"""Baseline for api_overhead.py: a bare FastAPI endpoint (no auth, database or middleware)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare/{item_id}")
async def bare(item_id: str) -> dict[str, object]:
    return {"id": item_id, "name": "Acme", "slug": "acme", "tier": "enterprise", "status": "active"}

"""Part 1: the two-tenant object-level authorization matrix, over real HTTP.

Tenants A and B each get resources of every kind (business data rows, experiments, tasks,
workers, keys, usage meters and events, plans); every name and external id a tenant owns
carries a marker of its own. Then every operation of /openapi.json is called as each tenant
with the other's ids in its path (operations without ids too, for lists and aggregates), with
the body the owner itself would send. A leak is a 2xx that returns the other tenant's object
(its marker in the answer, or a 2xx at all for an id that only the other tenant has) or that
changes it (its rows in the database differ before and after the other's calls)."""

from __future__ import annotations

import hashlib
import json
import random
import re
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from benchmarks.reliability.common import (
    Database,
    Mode,
    Row,
    Tenant,
    create_tenant,
    expect,
    log,
    migrate,
    running_server,
    server_env,
)
from sqlalchemy import MetaData, select

from aethercrown.connectors import stripe_service

# Path parameters that do not name a tenant's object.
NOT_OWNED = {"slug", "path"}
# What the server updates by itself from a tenant's own earlier requests (per-tenant request
# counters flushed every few seconds, a key's last use): not changes made by the other tenant.
BOOKKEEPING_TABLES = {"tenant_request_counts"}
BOOKKEEPING_COLUMNS = {"last_used_at"}


def business_rows(marker: str) -> dict[str, list[dict[str, Any]]]:
    """A small company whose every external id and name carries ``marker``."""
    return {
        "customers": [
            {
                "external_id": f"{marker}-c{i}",
                "name": f"{marker} customer {i}",
                "email": f"ops{i}@{marker}.example",
                "company_size": 10 * i,
                "signup_date": "2026-01-15",
            }
            for i in (1, 2, 3)
        ],
        "subscriptions": [
            {
                "external_id": f"{marker}-s1",
                "customer": f"{marker}-c1",
                "plan": "professional",
                "amount": 9900,
                "currency": "USD",
                "interval": "month",
                "started_at": "2026-01-15T00:00:00Z",
            },
        ],
        "activity": [
            {
                "external_id": f"{marker}-a1",
                "customer": f"{marker}-c1",
                "user_id": f"{marker}-u1",
                "kind": "session",
                "occurred_at": "2026-03-01T10:00:00Z",
                "duration_seconds": 600,
            },
        ],
        "tickets": [
            {
                "external_id": f"{marker}-t1",
                "customer": f"{marker}-c1",
                "opened_at": "2026-03-03T09:00:00Z",
                "subject": f"{marker} ticket",
            },
        ],
        "payments": [
            {
                "external_id": f"{marker}-p1",
                "customer": f"{marker}-c1",
                "subscription": f"{marker}-s1",
                "occurred_at": "2026-02-15T00:00:00Z",
                "status": "succeeded",
                "amount": 9900,
            },
        ],
        "marketing": [
            {
                "channel": f"{marker}-search",
                "day": "2026-03-01",
                "spend": 120_000,
                "conversions": 30,
                "attributed_revenue": 300_000,
            },
        ],
    }


def populate(client: httpx.Client, tenant: Tenant, marker: str) -> dict[str, str]:
    """Resources of every kind for one tenant; returns {path parameter name: one of its ids}."""
    h = tenant.headers
    ids: dict[str, str] = {"tenant_id": tenant.id}
    kind_param = {
        "customers": "customer_id",
        "subscriptions": "subscription_id",
        "activity": "activity_id",
        "tickets": "ticket_id",
        "payments": "payment_id",
        "marketing": "marketing_id",
    }
    for kind, rows in business_rows(marker).items():
        expect(client.post(f"/api/v1/data/{kind}", json=rows, headers=h), 200)
        page = expect(client.get(f"/api/v1/data/{kind}", params={"limit": 1}, headers=h), 200)
        ids[kind_param[kind]] = str(page["items"][0]["id"])
    ids["external_id"] = ids["customer"] = f"{marker}-c1"
    # /data/{kind}/by-external/{external_id}: each kind's own external id.
    for kind, rows in business_rows(marker).items():
        if "external_id" in rows[0]:
            ids[f"external_id:{kind}"] = rows[0]["external_id"]
    key = expect(
        client.post(
            "/api/v1/operational/security/keys/register",
            json={"name": f"{marker} key", "kind": "webhook_secret", "security_level": "high"},
            headers=h,
        ),
        201,
    )
    ids["key_id"] = str(key["id"])
    experiment = expect(
        client.post(
            "/api/v1/content/ab-test/create",
            json={"name": f"{marker} experiment", "variants": [{"key": "a"}, {"key": "b"}]},
            headers=h,
        ),
        201,
    )
    ids["experiment_id"] = str(experiment["id"])
    expect(
        client.post(
            f"/api/v1/content/ab-test/{experiment['id']}/track",
            json={
                "events": [
                    {"event_id": f"{marker}-e1", "user_id": f"{marker}-u1", "kind": "impression"}
                ]
            },
            headers=h,
        ),
        200,
    )
    expect(
        client.post(
            "/api/v1/optimization/tasks/schedule",
            json={
                "tasks": [
                    {
                        "id": f"{marker}-task{i}",
                        "type": "t",
                        "priority": 2,
                        "estimated_duration": 60,
                    }
                    for i in (1, 2)
                ]
            },
            headers=h,
        ),
        201,
    )
    ids["task_id"] = f"{marker}-task1"
    worker = expect(
        client.post(
            "/api/v1/optimization/tasks/workers/register",
            json={"name": f"{marker}-worker"},
            headers=h,
        ),
        201,
    )
    ids["worker_id"] = str(worker["id"])
    expect(
        client.post(
            "/api/v1/enterprise/usage/meters",
            json={"name": f"{marker}_units", "aggregation": "sum"},
            headers=h,
        ),
        200,
        201,
    )
    expect(
        client.post(
            "/api/v1/enterprise/usage/track",
            json={
                "events": [
                    {
                        "id": f"{marker}-u{i}",
                        "customer": f"{marker}-c1",
                        "metric": f"{marker}_units",
                        "value": 5,
                    }
                    for i in range(3)
                ]
            },
            headers=h,
        ),
        200,
    )
    # A content item (its profile first): /content/items/{content_id}/… need one.
    expect(
        client.put(
            "/api/v1/content/profile",
            json={
                "product_name": f"{marker} product",
                "audience": "finance teams at subscription businesses",
                "value_propositions": ["recover failed payments automatically"],
                "features": [{"name": "Smart retries", "does": "retries failed cards"}],
                "postal_address": "1 Main Street, Springfield",
                "sender_name": f"{marker} team",
            },
            headers=h,
        ),
        200,
    )
    item = expect(
        client.post("/api/v1/content/generate/email", json={"topic": f"{marker} news"}, headers=h),
        201,
    )
    ids["content_id"] = str(item["id"])
    source = expect(
        client.post("/api/v1/connectors/segment/sources", json={"name": marker}, headers=h), 201
    )
    ids["source_id"] = str(source["id"])
    # A stored Stripe event (/connectors/stripe/events/{event_id}/… name one by its Stripe id).
    secret = f"whsec_{marker}"
    expect(client.put("/api/v1/connectors/stripe", json={"webhook_secret": secret}, headers=h), 200)
    stripe_event = {
        "object": "event",
        "id": f"evt_{marker}",
        "type": "customer.created",
        "created": 1_767_225_600,
        "data": {"object": {"object": "customer", "id": f"cus_{marker}", "name": marker}},
    }
    payload = json.dumps(stripe_event).encode()
    signature = stripe_service.sign_payload(secret, payload, int(time.time()))
    expect(
        client.post(
            stripe_service.webhook_path(uuid.UUID(tenant.id)),
            content=payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        ),
        200,
    )
    ids["event_id"] = f"evt_{marker}"
    # An alert channel (email: a test send by its owner would reach no one real).
    channel = expect(
        client.post(
            "/api/v1/alert-channels",
            json={
                "name": f"{marker} alerts",
                "kind": "email",
                "recipients": [f"ops@{marker}.invalid"],
            },
            headers=h,
        ),
        201,
    )
    ids["channel_id"] = str(channel["id"])
    # An onboarding: its support webhook's host does not resolve, so it waits at that step.
    onboarding = expect(
        client.post(
            "/api/v1/enterprise/onboarding/create",
            json={
                "customer": {"external_id": f"{marker}-ent", "name": f"{marker} Enterprise"},
                "sla_tier": "enterprise",
                "contacts": [
                    {
                        "name": "Ada",
                        "email": "ada@customer.example",
                        "role": "admin",
                        "time_zone": "Europe/Berlin",
                    }
                ],
                "plan": "enterprise",
                "meters": [{"name": f"{marker}_units", "capacity": 1000}],
                "training": {"sessions": 1, "duration_minutes": 60},
                "support_webhook_url": f"https://support.{marker}.invalid/hook",
            },
            headers=h,
        ),
        201,
        202,
    )
    ids["onboarding_id"] = str(onboarding["id"])
    # The tenant's own plans: one renamed to carry the marker (best effort: plans are
    # per-tenant rows whether or not the rename is accepted).
    client.patch(
        "/api/v1/revenue/tiers",
        json={"plans": [{"slug": "starter", "name": f"{marker} starter"}]},
        headers=h,
    )
    client.patch(f"/api/v1/tenants/{tenant.id}", json={"name": f"{marker} inc"}, headers=h)
    return ids


def plausible_bodies(ids: dict[str, str], marker: str) -> dict[tuple[str, str], Any]:
    """The body the owner would send to an operation, with the owner's ids in it: the other
    tenant sends it too, so a lookup cannot hide behind a 422 for a missing field."""
    return {
        ("post", "/api/v1/optimization/tasks/{task_id}/complete"): {
            "worker_id": ids["worker_id"],
            "result": {"ok": True},
        },
        ("post", "/api/v1/optimization/tasks/{task_id}/fail"): {
            "worker_id": ids["worker_id"],
            "error": "x",
        },
        ("post", "/api/v1/optimization/tasks/workers/{worker_id}/heartbeat"): {},
        ("post", "/api/v1/content/ab-test/{experiment_id}/assign"): {"user_id": f"{marker}-u9"},
        ("post", "/api/v1/content/ab-test/{experiment_id}/track"): {
            "event_id": f"{marker}-x",
            "user_id": f"{marker}-u9",
            "kind": "impression",
        },
        ("post", "/api/v1/content/items/{content_id}/render"): {
            "customer": f"{marker}-c1",
            "from_address": "news@example.com",
        },
        ("post", "/api/v1/content/items/{content_id}/schedule"): {"at": "2099-01-01T09:00:00Z"},
        ("post", "/api/v1/content/items/{content_id}/headline-test"): {
            "headlines": [f"{marker} other headline"]
        },
        ("post", "/api/v1/enterprise/onboarding/tickets/{ticket_id}/first-response"): {},
        ("post", "/api/v1/tenants/{tenant_id}/scale"): {"tier": "starter"},
        ("patch", "/api/v1/tenants/{tenant_id}"): {"name": "renamed by the other tenant"},
        ("post", "/api/v1/enterprise/usage/{customer}/trigger-upsell"): {},
        ("post", "/api/v1/operational/security/keys/{key_id}/rotate"): {},
        ("post", "/api/v1/operational/security/keys/{key_id}/revoke"): {},
    }


def snapshot(db: Database, tenant_id: str) -> dict[str, str]:
    """{table: digest of the tenant's rows} over every table with a tenant_id column."""
    engine = db.engine()
    meta = MetaData()
    meta.reflect(engine)
    digests: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                if table.name in BOOKKEEPING_TABLES or (
                    "tenant_id" not in table.c and table.name != "tenants"
                ):
                    continue
                owner = table.c.id if table.name == "tenants" else table.c.tenant_id
                columns = [c for c in table.c if c.name not in BOOKKEEPING_COLUMNS]
                # Stored UUIDs are text on SQLite and uuid on PostgreSQL: compare as text.
                rows = conn.execute(select(*columns)).all()
                mine = sorted(
                    repr(tuple(r))
                    for r in rows
                    if str(r._mapping[owner.name]).replace("-", "") == tenant_id.replace("-", "")
                )
                digests[table.name] = hashlib.sha256("\n".join(mine).encode()).hexdigest()
    finally:
        engine.dispose()
    return digests


def operations(spec: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    out = []
    for path, item in spec["paths"].items():
        params = [p for p in re.findall(r"{(\w+)}", path) if p not in NOT_OWNED]
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                out.append((method, path, params))
    return out


# Operations that are the caller's own and would disturb the run if the attacker called them
# on itself (logging itself out is harmless; rotating all its own keys is not).
SKIP_OWN = {("post", "/api/v1/operational/security/keys/auto-rotate")}


def attack(
    client: httpx.Client,
    ops: list[tuple[str, str, list[str]]],
    attacker: Tenant,
    victim_ids: dict[str, str],
    victim_marker: str,
) -> tuple[Counter[str], list[str]]:
    """Every operation as ``attacker`` with the victim's ids. Returns counts by outcome and
    the leaks found in answers."""
    counts: Counter[str] = Counter()
    leaks: list[str] = []
    bodies = plausible_bodies(victim_ids, victim_marker)
    for method, template, params in ops:
        if (method, template) in SKIP_OWN:
            continue
        path = fill(template, params, victim_ids)
        if path is None:
            counts["uncovered"] += 1
            leaks.append(f"uncovered {method.upper()} {template}")
            continue
        body = bodies.get((method, template), {})
        response = client.request(
            method,
            path,
            headers=attacker.headers,
            json=body if method != "get" else None,
        )
        counts["attempts"] += 1
        counts["with ids" if params else "without ids"] += 1
        status = response.status_code
        if status >= 500:
            counts["5xx"] += 1
            leaks.append(f"5xx {method.upper()} {template}: {status}")
        elif 200 <= status < 300:
            shown = victim_marker in response.text
            if shown or params:
                counts["leaks"] += 1
                leaks.append(f"{status} {method.upper()} {template}")
        else:
            counts[str(status)] += 1
            if params:
                counts[f"ids {status}"] += 1
                if status == 422:
                    log(f"authz: 422 before any lookup: {method.upper()} {template}")
    return counts, leaks


def fill(template: str, params: list[str], ids: dict[str, str]) -> str | None:
    """The path with the owner's ids in it, or None when some parameter has no id."""
    kind = re.match(r"/api/v1/data/(\w+)/", template)
    path = template
    for p in params:
        value = ids.get(f"{p}:{kind.group(1)}") if kind else None
        value = value or ids.get(p)
        if value is None:
            return None
        path = path.replace("{" + p + "}", value)
    return path


def owner_control(
    client: httpx.Client, ops: list[tuple[str, str, list[str]]], owner: Tenant, ids: dict[str, str]
) -> tuple[int, int]:
    """The same ids as their owner (reads only): most must answer 2xx, or the matrix's 404s
    would only prove that the ids were wrong."""
    ok = total = 0
    for method, template, params in ops:
        path = fill(template, params, ids)
        if method != "get" or not params or path is None:
            continue
        total += 1
        response = client.get(path, headers=owner.headers)
        ok += response.is_success
        if not response.is_success:
            log(f"authz control: {template} answered its owner {response.status_code}")
    return ok, total


def run(db: Database, mode: Mode) -> list[Row]:
    rng = random.Random(mode.seed)
    marker_a = f"zqa{rng.getrandbits(32):08x}"
    marker_b = f"zqb{rng.getrandbits(32):08x}"
    with tempfile.TemporaryDirectory(prefix="aethercrown-authz-") as tmp:
        migrate(db, Path(tmp), mode)
        with (
            running_server(server_env(db, Path(tmp), mode)) as server,
            httpx.Client(base_url=server.base, timeout=60) as client,
        ):
            a = create_tenant(client, "rel-a")
            b = create_tenant(client, "rel-b")
            ids_a = populate(client, a, marker_a)
            ids_b = populate(client, b, marker_b)
            spec = expect(client.get("/openapi.json"), 200)
            ops = operations(spec)
            log(f"authz: {len(ops)} operations in the OpenAPI document")
            control_ok, control_total = owner_control(client, ops, a, ids_a)
            total: Counter[str] = Counter()
            problems: list[str] = []
            changed: list[str] = []
            for attacker, victim, victim_ids, marker in (
                (b, a, ids_a, marker_a),
                (a, b, ids_b, marker_b),
            ):
                before = snapshot(db, victim.id)
                counts, leaks = attack(client, ops, attacker, victim_ids, marker)
                after = snapshot(db, victim.id)
                changed += [f"{victim.slug}.{t}" for t in before if before[t] != after.get(t)]
                total += counts
                problems += leaks
    with_ids = sum(1 for _, _, params in ops if params)
    failures = total["leaks"] + total["5xx"] + total["uncovered"] + len(changed)
    answered = ", ".join(
        f"{k.removeprefix('ids ')}: {v}" for k, v in sorted(total.items()) if k.startswith("ids ")
    )
    figure = (
        f"{with_ids} operations with ids + {len(ops) - with_ids} without, both directions; "
        f"{total['attempts']} attempts; leaks {total['leaks']}, 5xx {total['5xx']}, "
        f"victim rows changed {len(changed)}, uncovered {total['uncovered']}; "
        f"operations with ids answered {answered}; control: the owner's own reads with ids "
        f"answered 2xx {control_ok}/{control_total}"
    )
    if problems or changed:
        figure += "; " + "; ".join(sorted(set(problems))[:8] + changed[:8])
        log("authz problems: " + json.dumps(sorted(set(problems)) + changed))
    return [
        Row(
            "1 authz matrix",
            db.backend,
            "2 tenants, resources of every kind, every OpenAPI operation as the other tenant",
            failures,
            figure,
        )
    ]

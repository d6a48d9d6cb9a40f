"""The content API on a real database: profile, offline generation, stored versioned items."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.content.conftest import BASE, PROFILE, put_profile


def test_generation_needs_a_profile(client: TestClient, tenant: TenantHandle) -> None:
    response = client.post(
        f"{BASE}/generate/blog", json={"topic": "t", "keyphrase": "k"}, headers=tenant.headers
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("content-profile-missing")


def test_profile_round_trip_never_shows_the_key(client: TestClient, tenant: TenantHandle) -> None:
    out = put_profile(
        client,
        tenant,
        provider={"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-secret"},
    )
    assert out["provider"] == {
        "base_url": "http://127.0.0.1:9/v1",
        "model": "m",
        "has_api_key": True,
    }
    got = client.get(f"{BASE}/profile", headers=tenant.headers)
    assert got.status_code == 200 and "sk-secret" not in got.text
    assert got.json()["features"][0]["name"] == "Smart retries"


def test_blog_is_generated_offline_stored_listed_and_versioned(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    put_profile(client, tenant)
    response = client.post(
        f"{BASE}/generate/blog",
        json={
            "topic": "how to reduce involuntary churn",
            "keyphrase": "involuntary churn",
            "target_words": 1200,
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    item = response.json()
    current = item["current"]
    assert item["kind"] == "blog" and item["version"] == 1
    assert current["provider"] == "offline" and current["fallback_reason"] is None
    assert current["inputs"]["keyphrase"] == "involuntary churn"
    body = current["body"]
    for key in (
        "title",
        "slug",
        "meta_description",
        "outline",
        "markdown",
        "html",
        "call_to_action",
        "links",
    ):
        assert body[key], key
    analysis = current["analysis"]
    assert 960 <= analysis["word_count"] <= 1440
    checks = analysis["seo"] + analysis["readability"]
    assert {c["key"] for c in checks} >= {
        "keyphrase_in_title",
        "keyphrase_in_introduction",
        "keyphrase_in_slug",
        "keyphrase_in_subheadings",
        "keyphrase_density",
        "meta_description_length",
        "keyphrase_in_meta_description",
        "title_width",
        "sentence_length",
        "paragraph_length",
        "subheading_distribution",
        "passive_voice",
        "transition_words",
        "flesch_reading_ease",
    }
    assert all({"score", "status", "fix"} <= set(c) for c in checks)

    listed = client.get(f"{BASE}/items", params={"kind": "blog"}, headers=tenant.headers).json()
    assert [i["id"] for i in listed["items"]] == [item["id"]]

    # An edit is a new version, analysed again; the first version stays.
    new_markdown = body["markdown"].replace("## ", "## Involuntary churn: ", 1)
    edited = client.patch(
        f"{BASE}/items/{item['id']}",
        json={"markdown": new_markdown, "title": "My own title"},
        headers=tenant.headers,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2
    assert edited.json()["current"]["provider"] == "edit"
    assert edited.json()["current"]["body"]["markdown"].startswith("# My own title")
    title_check = next(
        c for c in edited.json()["current"]["analysis"]["seo"] if c["key"] == "keyphrase_in_title"
    )
    assert title_check["status"] == "bad"
    versions = client.get(f"{BASE}/items/{item['id']}/versions", headers=tenant.headers).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["body"]["title"] == body["title"]

    # Another tenant sees none of it.
    assert client.get(f"{BASE}/items/{item['id']}", headers=other_tenant.headers).status_code == 404
    assert client.get(f"{BASE}/items", headers=other_tenant.headers).json()["items"] == []
    assert (
        client.patch(
            f"{BASE}/items/{item['id']}", json={"title": "x"}, headers=other_tenant.headers
        ).status_code
        == 404
    )


def test_social_posts_per_platform(client: TestClient, tenant: TenantHandle) -> None:
    put_profile(client, tenant)
    response = client.post(
        f"{BASE}/generate/social",
        json={
            "topic": "failed payments",
            "keyphrase": "involuntary churn",
            "platforms": ["x", "bluesky", "instagram", "linkedin"],
            "link": "https://acme.com/t",
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [i["channel"] for i in items] == ["x", "bluesky", "instagram", "linkedin"]
    for item in items:
        body = item["current"]["body"]
        assert all(p["valid"] and p["length"] <= body["limit"] for p in body["posts"])
    # An edit over the limit is refused and changes nothing.
    x_item = items[0]
    too_long = client.patch(
        f"{BASE}/items/{x_item['id']}", json={"text": "a" * 300}, headers=tenant.headers
    )
    assert too_long.status_code == 422
    assert client.get(f"{BASE}/items/{x_item['id']}", headers=tenant.headers).json()["version"] == 1


def test_bad_input_is_a_4xx_that_changes_nothing(client: TestClient, tenant: TenantHandle) -> None:
    bad_profiles = [
        PROFILE | {"product_name": "a\x00b"},
        PROFILE | {"features": []},
        PROFILE | {"links": [{"title": "x", "url": "javascript:alert(1)"}]},
        PROFILE | {"unknown": 1},
        PROFILE | {"tone": "sarcastic"},
        PROFILE | {"provider": {"base_url": "http://[::1", "model": "m"}},
        PROFILE | {"provider": {"base_url": "http://127.0.0.1:99999/v1", "model": "m"}},
    ]
    for body in bad_profiles:
        response = client.put(f"{BASE}/profile", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
    assert client.get(f"{BASE}/profile", headers=tenant.headers).status_code == 409
    put_profile(client, tenant)
    for body in [
        {"topic": "t", "keyphrase": "k", "target_words": 5000},
        {"topic": "", "keyphrase": "k"},
        {"topic": "t\x00", "keyphrase": "k"},
        {"topic": "t", "keyphrase": "k", "seed": -1},
    ]:
        response = client.post(f"{BASE}/generate/blog", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
    response = client.post(
        f"{BASE}/generate/social",
        json={"topic": "t", "platforms": ["myspace"]},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert client.get(f"{BASE}/items", headers=tenant.headers).json()["items"] == []
    assert client.get(f"{BASE}/items/not-a-uuid", headers=tenant.headers).status_code == 422


def test_analyze_endpoint_and_auth(client: TestClient, tenant: TenantHandle) -> None:
    response = client.post(
        f"{BASE}/analyze",
        json={"title": "Invoices", "keyphrase": "invoices", "markdown": "Invoices matter. " * 20},
        headers=tenant.headers,
    )
    assert response.status_code == 200
    assert response.json()["word_count"] == 40
    assert client.post(f"{BASE}/analyze", json={"title": "", "markdown": ""}).status_code == 401

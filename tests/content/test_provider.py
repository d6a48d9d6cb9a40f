"""Generation through a real OpenAI-compatible HTTP server on loopback: answers, retries with
Retry-After, server errors, timeouts, malformed JSON and too-short output, and the fallback to
the offline writer that each item records."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aethercrown.content.provider import (
    ProviderConfig,
    ProviderFailed,
    complete_json,
    retry_after_seconds,
)
from tests.conftest import TenantHandle
from tests.content.conftest import BASE, put_profile
from tests.content.llm_server import LLMServer, Reply, answer

SENTENCE = "Smart retries recover failed payments for finance teams every single day."


def blog_answer(words: int = 900, keyphrase: str = "involuntary churn") -> dict[str, Any]:
    paragraph = " ".join([SENTENCE] * 9)  # 99 words
    sections = []
    for i in range(max(1, words // 100)):
        sections.append(f"## Part {i + 1} of {keyphrase}\n\n{paragraph}")
    return {
        "title": f"{keyphrase.capitalize()}: what finance teams should know",
        "meta_description": f"{keyphrase.capitalize()} explained: " + "m" * 110,
        "slug": "involuntary-churn-guide",
        "markdown": f"{keyphrase.capitalize()} costs money. [Guide](https://acme.example/playbook)"
        + "\n\n"
        + "\n\n".join(sections),
    }


def _config(server: LLMServer, **overrides: Any) -> ProviderConfig:
    return ProviderConfig(
        base_url=server.base_url, model="test-model", api_key="sk-test", **overrides
    )


def _accept_text(data: dict[str, Any]) -> str | None:
    text = data.get("text")
    if not isinstance(text, str) or len(text.split()) < 5:
        return "too short"
    return None


def test_answer_is_parsed_and_validated(llm: LLMServer) -> None:
    llm.queue(answer({"text": "A post long enough to be accepted here."}))
    result = complete_json(_config(llm), [{"role": "user", "content": "hi"}], _accept_text)
    assert result.data["text"].startswith("A post") and result.attempts == 1
    sent = llm.requests[0]
    assert sent["model"] == "test-model"
    assert sent["response_format"] == {"type": "json_object"}


def test_429_waits_what_retry_after_asks(llm: LLMServer) -> None:
    llm.queue(
        Reply(status=429, content="slow down", headers={"Retry-After": "1"}),
        answer({"text": "A post long enough to be accepted here."}),
    )
    complete_json(_config(llm), [{"role": "user", "content": "hi"}], _accept_text)
    assert len(llm.requests) == 2
    assert llm.request_times[1] - llm.request_times[0] >= 0.95


def test_retry_after_beyond_the_cap_gives_up_at_once(llm: LLMServer) -> None:
    llm.queue(Reply(status=429, headers={"Retry-After": "3600"}))
    with pytest.raises(ProviderFailed, match="exceeds"):
        complete_json(_config(llm), [{"role": "user", "content": "hi"}], _accept_text)
    assert len(llm.requests) == 1


def test_server_errors_are_retried_up_to_the_cap(llm: LLMServer) -> None:
    llm.default = Reply(status=500, headers={"retry-after-ms": "10"})
    with pytest.raises(ProviderFailed, match=r"HTTP 500.*after 2 retries"):
        complete_json(_config(llm, max_retries=2), [{"role": "user", "content": "x"}], _accept_text)
    assert len(llm.requests) == 3


def test_timeouts_are_retried_then_fail(llm: LLMServer) -> None:
    llm.default = Reply(delay=1.0, content=json.dumps({"text": "late"}))
    started = time.monotonic()
    with pytest.raises(ProviderFailed, match="timed out"):
        complete_json(
            _config(llm, timeout_seconds=0.2, max_retries=1, base_backoff_seconds=0.01),
            [{"role": "user", "content": "x"}],
            _accept_text,
        )
    assert len(llm.requests) == 2
    assert time.monotonic() - started < 5


def test_invalid_output_is_asked_again_once(llm: LLMServer) -> None:
    llm.queue(
        Reply(content="this is not json"),
        answer({"text": "A post long enough to be accepted here."}),
    )
    result = complete_json(_config(llm), [{"role": "user", "content": "hi"}], _accept_text)
    assert result.attempts == 2
    # The second request carries the rejected answer and the reason.
    follow_up = llm.requests[1]["messages"]
    assert follow_up[-2]["content"] == "this is not json"
    assert "not JSON" in follow_up[-1]["content"]

    llm.queue(answer({"text": "short"}), answer({"text": "still short"}))
    with pytest.raises(ProviderFailed, match="after asking again: too short"):
        complete_json(_config(llm), [{"role": "user", "content": "hi"}], _accept_text)


def test_malformed_http_body_is_a_failure_not_a_crash(llm: LLMServer) -> None:
    llm.default = Reply(raw=b"{not json at all")
    with pytest.raises(ProviderFailed):
        complete_json(_config(llm), [{"role": "user", "content": "x"}], _accept_text)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert (
        retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412480) == 0
    )
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# Through the API --------------------------------------------------------------------------------


def _use(client: TestClient, tenant: TenantHandle, llm: LLMServer, **profile: Any) -> None:
    put_profile(
        client,
        tenant,
        provider={"base_url": llm.base_url, "model": "test-model", "api_key": "sk-tenant"},
        **profile,
    )


def test_blog_from_the_provider_is_stored_with_its_model(
    client: TestClient, tenant: TenantHandle, llm: LLMServer
) -> None:
    _use(client, tenant, llm)
    llm.queue(answer(blog_answer()))
    response = client.post(
        f"{BASE}/generate/blog",
        json={"topic": "reducing churn", "keyphrase": "involuntary churn"},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    current = response.json()["current"]
    assert current["provider"] == "openai-compatible"
    assert current["model"] == "test-model"
    assert current["fallback_reason"] is None
    assert current["body"]["slug"] == "involuntary-churn-guide"
    assert current["body"]["links"][0]["kind"] == "internal"
    assert current["analysis"]["word_count"] >= 800
    prompt = json.dumps(llm.requests[0]["messages"])
    assert "Acme Recover" in prompt and "involuntary churn" in prompt


def test_too_short_twice_falls_back_to_the_offline_writer(
    client: TestClient, tenant: TenantHandle, llm: LLMServer
) -> None:
    _use(client, tenant, llm)
    llm.queue(answer(blog_answer(words=200)), answer(blog_answer(words=300)))
    response = client.post(
        f"{BASE}/generate/blog",
        json={"topic": "reducing churn", "keyphrase": "involuntary churn"},
        headers=tenant.headers,
    )
    assert response.status_code == 201
    current = response.json()["current"]
    assert current["provider"] == "offline"
    assert "after asking again" in current["fallback_reason"]
    assert "words" in current["fallback_reason"]
    assert current["analysis"]["word_count"] >= 800
    assert len(llm.requests) == 2


def test_unreachable_provider_falls_back_for_social(
    client: TestClient, tenant: TenantHandle, llm: LLMServer
) -> None:
    _use(client, tenant, llm)
    llm.default = Reply(status=503, headers={"retry-after-ms": "1"})
    response = client.post(
        f"{BASE}/generate/social",
        json={"topic": "failed payments", "platforms": ["x", "mastodon"]},
        headers=tenant.headers,
    )
    assert response.status_code == 201
    for item in response.json()["items"]:
        assert item["current"]["provider"] == "offline"
        assert "HTTP 503" in item["current"]["fallback_reason"]
        assert all(p["valid"] for p in item["current"]["body"]["posts"])


def test_over_limit_social_answer_is_asked_again(
    client: TestClient, tenant: TenantHandle, llm: LLMServer
) -> None:
    _use(client, tenant, llm)
    llm.queue(
        answer({"text": "Too long. " * 40}), answer({"text": "Fixed and short enough now #Churn"})
    )
    response = client.post(
        f"{BASE}/generate/social",
        json={"topic": "failed payments", "platforms": ["x"]},
        headers=tenant.headers,
    )
    current = response.json()["items"][0]["current"]
    assert current["provider"] == "openai-compatible"
    assert current["body"]["posts"][0]["text"] == "Fixed and short enough now #Churn"
    assert "over X's 280" in llm.requests[1]["messages"][-1]["content"]


def test_prompts_never_carry_another_tenants_facts(
    client: TestClient, tenant: TenantHandle, other_tenant: TenantHandle, llm: LLMServer
) -> None:
    _use(client, tenant, llm)
    _use(
        client,
        other_tenant,
        llm,
        product_name="Globex Ledger",
        audience="accountants at agencies",
        proof_points=["Globex closes books in two days"],
        value_propositions=["close the books faster"],
    )
    llm.default = answer(blog_answer())
    for handle in (tenant, other_tenant, tenant):
        response = client.post(
            f"{BASE}/generate/blog",
            json={"topic": "month-end", "keyphrase": "involuntary churn"},
            headers=handle.headers,
        )
        assert response.status_code == 201
    acme_1, globex, acme_2 = (json.dumps(r["messages"]) for r in llm.requests)
    assert "Globex" not in acme_1 and "Globex" not in acme_2
    assert "Acme Recover" not in globex and "Globex Ledger" in globex
    assert "sk-tenant" not in acme_1


def test_the_whole_generation_has_a_time_budget(llm: LLMServer) -> None:
    llm.default = Reply(status=503, headers={"Retry-After": "1"})
    started = time.monotonic()
    with pytest.raises(ProviderFailed, match="budget"):
        complete_json(
            _config(llm, max_retries=10, total_budget_seconds=1.5),
            [{"role": "user", "content": "x"}],
            _accept_text,
        )
    assert time.monotonic() - started < 3
    assert len(llm.requests) == 2  # one wait of 1 s fits the budget, a second does not


def newsletter_answer(sections: int = 3) -> dict[str, Any]:
    return {
        "subject": "{{first_name|Hi}}, three ways to recover failed payments",
        "preheader": "What we shipped this month, one tip for your team and a result to share.",
        "intro": "Here is what changed in how Acme Recover handles failed payments.",
        "sections": [
            {"heading": f"Part {i + 1}", "text": " ".join([SENTENCE] * 2)} for i in range(sections)
        ],
    }


def test_newsletter_and_email_from_the_provider_render_with_their_merge_fields(
    client: TestClient, tenant: TenantHandle, llm: LLMServer
) -> None:
    _use(client, tenant, llm)
    llm.queue(answer(newsletter_answer(sections=4)))
    letter = client.post(
        f"{BASE}/generate/newsletter",
        json={"topic": "failed payments", "sections": 4},
        headers=tenant.headers,
    )
    assert letter.status_code == 201, letter.text
    current = letter.json()["current"]
    assert (current["provider"], current["model"]) == ("openai-compatible", "test-model")
    assert [s["heading"] for s in current["body"]["sections"]] == [
        "Part 1",
        "Part 2",
        "Part 3",
        "Part 4",
    ]
    assert current["body"]["call_to_action"]["url"]  # the tenant's own CTA link, not the model's
    prompt = json.dumps(llm.requests[0]["messages"])
    assert "Exactly 4 sections" in prompt and "first_name" in prompt and "Acme Recover" in prompt

    llm.queue(
        answer(
            {"subject": "A faster way", "preheader": "x" * 200, "intro": "Hi.", "paragraphs": []}
        ),
        answer(
            {
                "subject": "A faster way to handle failed payments",
                "preheader": "How Acme Recover gets the money back without a phone call.",
                "intro": "You told us failed payments cost you customers.",
                "paragraphs": [SENTENCE, "{{attributes.plan|Your plan}} includes it today."],
            }
        ),
    )
    message = client.post(
        f"{BASE}/generate/email", json={"topic": "failed payments"}, headers=tenant.headers
    )
    assert message.status_code == 201, message.text
    current = message.json()["current"]
    assert current["provider"] == "openai-compatible"
    assert len(current["body"]["sections"]) == 2
    assert "preheader" in llm.requests[1]["messages"][-1]["content"]  # asked again, told why


def test_a_newsletter_with_an_unknown_merge_field_twice_is_written_offline(
    client: TestClient, tenant: TenantHandle, llm: LLMServer
) -> None:
    _use(client, tenant, llm)
    wrong = newsletter_answer()
    wrong["intro"] = "Hello {{favourite_colour}}, here is the news."
    llm.queue(answer(wrong), answer(wrong))
    response = client.post(
        f"{BASE}/generate/newsletter", json={"topic": "failed payments"}, headers=tenant.headers
    )
    assert response.status_code == 201
    current = response.json()["current"]
    assert current["provider"] == "offline"
    assert "unknown merge field 'favourite_colour'" in current["fallback_reason"]
    assert len(current["body"]["sections"]) == 3
    offline = client.post(
        f"{BASE}/generate/email",
        json={"topic": "failed payments", "provider": "offline"},
        headers=tenant.headers,
    )
    assert offline.json()["current"]["provider"] == "offline" and len(llm.requests) == 2

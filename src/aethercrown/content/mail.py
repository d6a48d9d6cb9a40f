"""Newsletters and email campaigns: offline copy, merge fields, and the rendered message.

Merge fields are written ``{{field}}`` or ``{{field|fallback}}``; they are looked up in the
customer's data, never evaluated (no template code runs), HTML-escaped in the HTML part and
stripped of line breaks in headers. An unknown field is an error, so is a missing value with no
fallback. Every message carries an unsubscribe link and the sender's postal address (CAN-SPAM)
and the List-Unsubscribe / List-Unsubscribe-Post headers (RFC 8058 one-click). Pure: plain values
in and out; the message is built with the standard library's ``email`` package.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from email import errors
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTPUTF8
from typing import Any
from urllib.parse import quote

from aethercrown.content.facts import ProductFacts, contains_banned
from aethercrown.content.writer import seed_for

MERGE_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\|([^{}]*))?\}\}")
KNOWN_FIELDS = frozenset(
    {"first_name", "last_name", "name", "email", "external_id", "country", "company_size"}
)


class MergeError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def fields_used(template: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in MERGE_FIELD.finditer(template)]


def check_fields(template: str) -> None:
    """Raises MergeError for a field no customer can have (attributes.<key> is always allowed)."""
    for field, _fallback in fields_used(template):
        if field not in KNOWN_FIELDS and not re.fullmatch(r"attributes\.[A-Za-z0-9_]+", field):
            raise MergeError(
                field,
                f"unknown merge field '{field}': use one of {', '.join(sorted(KNOWN_FIELDS))} "
                "or attributes.<key>",
            )


def customer_values(customer: dict[str, Any]) -> dict[str, str]:
    """The merge values of a customer row (as the data API returns it)."""
    # Line breaks never belong in a name or address, and would be a header injection.
    name = re.sub(r"\s+", " ", str(customer.get("name") or "")).strip()
    parts = name.split()
    values = {
        "name": name,
        "first_name": parts[0] if parts else "",
        "last_name": parts[-1] if len(parts) > 1 else "",
        "email": re.sub(r"\s+", "", str(customer.get("email") or "")),
        "external_id": str(customer.get("external_id") or ""),
        "country": str(customer.get("country") or ""),
        "company_size": ""
        if customer.get("company_size") is None
        else str(customer["company_size"]),
    }
    for key, value in (customer.get("attributes") or {}).items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            values[f"attributes.{key}"] = str(value)
    return values


def merge(template: str, values: dict[str, str], *, escape: bool, header: bool = False) -> str:
    check_fields(template)

    def substitute(match: re.Match[str]) -> str:
        field, fallback = match.group(1), match.group(2)
        value = values.get(field, "").strip()
        if not value:
            if fallback is None:
                raise MergeError(
                    field, f"the customer has no '{field}' and the field gives no fallback"
                )
            value = fallback.strip()
        if header:
            value = re.sub(r"[\r\n]+", " ", value)
        return html.escape(value) if escape else value

    return MERGE_FIELD.sub(substitute, template)


# A subject longer than this is cut off in most inboxes; a preheader longer than this is.
SUBJECT_MAX = 100
PREHEADER_MAX = 130


@dataclass(frozen=True)
class Section:
    heading: str | None
    text: str
    link_title: str | None = None
    link_url: str | None = None


_SUBJECTS = (
    "{{first_name|Hi}}, {topic_cap}: what's new this month",
    "{topic_cap}: three ideas for {{first_name|your team}}",
    "Your {topic} update from {product}",
)
_PREHEADERS = (
    "Short, practical notes on {topic}, and how {product} helps you {vp}.",
    "What we shipped, one tip to try this week and a result worth sharing.",
)
_TIPS = (
    "Pick one number, write down its value today and check it again next Monday.",
    "Talk to three customers this week and ask what almost made them leave.",
    "Automate one task your team repeats every week, then measure the time saved.",
    "Review last month's results in a short meeting and agree on a single next step.",
)


def write_newsletter(
    facts: ProductFacts, *, topic: str, sections: int = 3, seed: int = 0
) -> dict[str, Any]:
    """A newsletter of ``sections`` sections (2–6) with merge fields in the greeting."""
    rng = random.Random(seed_for("newsletter", str(seed), topic, facts.product_name))
    fill = {
        "topic": topic,
        "topic_cap": topic[:1].upper() + topic[1:],
        "product": facts.product_name,
        "vp": rng.choice(facts.value_propositions),
    }
    features = list(facts.features)
    rng.shuffle(features)
    tips = list(_TIPS)
    rng.shuffle(tips)
    internal = facts.links_of("internal") + facts.links_of("cta")
    pool: list[Section] = []
    for feature in features:
        link = internal[0] if internal else None
        pool.append(
            Section(
                f"New in {facts.product_name}: {feature.name}",
                f"{feature.name} {feature.does.rstrip('.')}. It helps {facts.audience} "
                f"{fill['vp']}, with no extra work for your team.",
                link.title if link else None,
                link.url if link else None,
            )
        )
    for tip in tips:
        pool.append(Section(f"A tip on {topic}", tip))
    for proof in facts.proof_points:
        pool.append(Section("A result worth sharing", proof.rstrip(".") + "."))
    # Alternate kinds so the issue reads varied: product news, a tip, a result, …
    ordered: list[Section] = []
    kinds = [
        pool[: len(features)],
        pool[len(features) : len(features) + len(tips)],
        pool[len(features) + len(tips) :],
    ]
    while len(ordered) < sections and any(kinds):
        for bucket in kinds:
            if bucket and len(ordered) < sections:
                ordered.append(bucket.pop(0))
    ordered = [s for s in ordered if contains_banned(s.text, facts.banned_words) is None]
    return letter(
        facts,
        subject=rng.choice(_SUBJECTS).format(**fill),
        preheader=rng.choice(_PREHEADERS).format(**fill),
        intro=f"Here is this month's note on {topic} from the {facts.product_name} team.",
        sections=ordered,
    )


def write_email(facts: ProductFacts, *, topic: str, seed: int = 0) -> dict[str, Any]:
    """A one-message campaign: one idea, one proof, one call to action."""
    rng = random.Random(seed_for("email", str(seed), topic, facts.product_name))
    feature = rng.choice(facts.features)
    vp = rng.choice(facts.value_propositions)
    proof = facts.proof_points[0].rstrip(".") + "." if facts.proof_points else ""
    body = [
        f"You told us {topic} matters to your team, so here is one way to act on it.",
        f"{feature.name} {feature.does.rstrip('.')}, so you can {vp}.",
    ]
    if proof and contains_banned(proof, facts.banned_words) is None:
        body.append(proof)
    return letter(
        facts,
        subject=rng.choice(
            ("{{first_name|Quick question}}: " + topic + "?", f"A faster way to handle {topic}")
        ),
        preheader=f"How {facts.product_name} helps you {vp}.",
        intro=body[0],
        sections=[Section(None, text) for text in body[1:]],
    )


def letter(
    facts: ProductFacts, *, subject: str, preheader: str, intro: str, sections: list[Section]
) -> dict[str, Any]:
    """The stored body of a newsletter or an email, whoever wrote its copy: the greeting, the
    call to action and the signature come from the tenant's facts."""
    cta = facts.cta_link()
    return {
        "subject": subject,
        "preheader": preheader[:PREHEADER_MAX],
        "greeting": "Hi {{first_name|there}},",
        "intro": intro,
        "sections": [
            {
                "heading": s.heading,
                "text": s.text,
                "link_title": s.link_title,
                "link_url": s.link_url,
            }
            for s in sections
        ],
        "call_to_action": {"title": cta.title, "url": cta.url} if cta else None,
        "signature": f"The {facts.sender_name or facts.product_name} team",
    }


def copy_validator(
    facts: ProductFacts, *, sections: int | None
) -> Callable[[dict[str, Any]], str | None]:
    """Checks a provider's newsletter (``sections`` given: that many headed sections) or email
    (``paragraphs``) before it is stored; the message says what to fix, for asking again."""

    def validate(data: dict[str, Any]) -> str | None:
        for key, most in (("subject", SUBJECT_MAX), ("preheader", PREHEADER_MAX), ("intro", 600)):
            value = data.get(key)
            if not isinstance(value, str) or not value.strip():
                return f"'{key}' must be a non-empty string"
            if len(value) > most:
                return f"'{key}' is {len(value)} characters; keep it under {most}"
        headings: list[str] = []
        texts: list[Any] = []
        if sections is not None:
            parts = data.get("sections")
            if not isinstance(parts, list) or len(parts) != sections:
                return f"'sections' must be a list of exactly {sections} objects"
            for part in parts:
                if not isinstance(part, dict):
                    return "each section must be an object with 'heading' and 'text'"
                heading = part.get("heading")
                if not isinstance(heading, str) or not heading.strip() or len(heading) > 120:
                    return "each section needs a 'heading' of 1–120 characters"
                headings.append(heading)
                texts.append(part.get("text"))
        else:
            paragraphs = data.get("paragraphs")
            if not isinstance(paragraphs, list) or not 1 <= len(paragraphs) <= 3:
                return "'paragraphs' must be a list of one to three strings"
            texts = paragraphs
        for text in texts:
            if not isinstance(text, str) or not 5 <= len(text.split()) <= 200:
                return "every section text or paragraph must be 5–200 words"
        copy = [data["subject"], data["preheader"], data["intro"], *headings, *texts]
        for template in copy:
            if "\x00" in template:
                return "the copy holds a NUL character"
            try:
                check_fields(template)
            except MergeError as exc:
                return str(exc)
        banned = contains_banned(" ".join(copy), facts.banned_words)
        return None if banned is None else f"it uses the banned word '{banned}'"

    return validate


def letter_from_copy(facts: ProductFacts, data: dict[str, Any]) -> dict[str, Any]:
    """A body from copy that ``copy_validator`` accepted."""
    if "sections" in data:
        parts = [Section(p["heading"].strip(), p["text"].strip()) for p in data["sections"]]
    else:
        parts = [Section(None, text.strip()) for text in data["paragraphs"]]
    return letter(
        facts,
        subject=data["subject"].strip(),
        preheader=data["preheader"].strip(),
        intro=data["intro"].strip(),
        sections=parts,
    )


def templates_of(body: dict[str, Any]) -> list[str]:
    texts = [body["subject"], body["preheader"], body["greeting"], body["intro"], body["signature"]]
    for section in body["sections"]:
        texts += [section["heading"] or "", section["text"]]
    return texts


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str
    headers: dict[str, str]
    raw: str


def unsubscribe_url(base: str, recipient: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}recipient={quote(recipient, safe='')}"


def render(
    body: dict[str, Any],
    customer: dict[str, Any],
    *,
    unsubscribe_base: str,
    postal_address: str,
    from_name: str,
    from_address: str,
) -> Rendered:
    """The message for one customer: both parts, the headers and the whole RFC 5322 text."""
    values = customer_values(customer)
    recipient = values["external_id"] or values["email"]
    unsubscribe = unsubscribe_url(unsubscribe_base, recipient)
    subject = merge(body["subject"], values, escape=False, header=True)
    preheader = merge(body["preheader"], values, escape=False, header=True)
    greeting_t = merge(body["greeting"], values, escape=False)
    greeting_h = merge(body["greeting"], values, escape=True)
    intro_t = merge(body["intro"], values, escape=False)
    intro_h = merge(body["intro"], values, escape=True)
    text_parts = [greeting_t, "", intro_t, ""]
    html_parts = [
        # The preheader: shown by inboxes after the subject, hidden in the message itself.
        f'<div style="display:none;max-height:0;overflow:hidden">{html.escape(preheader)}</div>',
        f"<p>{greeting_h}</p>",
        f"<p>{intro_h}</p>",
    ]
    for section in body["sections"]:
        if section.get("heading"):
            text_parts += [merge(section["heading"], values, escape=False).upper(), ""]
            html_parts.append(f"<h2>{merge(section['heading'], values, escape=True)}</h2>")
        text_parts += [merge(section["text"], values, escape=False), ""]
        html_parts.append(f"<p>{merge(section['text'], values, escape=True)}</p>")
        if section.get("link_url"):
            text_parts += [f"{section['link_title']}: {section['link_url']}", ""]
            html_parts.append(
                f'<p><a href="{html.escape(section["link_url"], quote=True)}">'
                f"{html.escape(section['link_title'] or section['link_url'])}</a></p>"
            )
    cta = body.get("call_to_action")
    if cta:
        text_parts += [f"{cta['title']}: {cta['url']}", ""]
        html_parts.append(
            f'<p><a href="{html.escape(cta["url"], quote=True)}"><strong>'
            f"{html.escape(cta['title'])}</strong></a></p>"
        )
    signature = merge(body["signature"], values, escape=False)
    text_parts += [signature, "", "--", postal_address, f"Unsubscribe: {unsubscribe}"]
    html_parts += [
        f"<p>{html.escape(signature)}</p>",
        f'<hr><p style="font-size:12px;color:#666">{html.escape(postal_address)}<br>'
        f'<a href="{html.escape(unsubscribe, quote=True)}">Unsubscribe</a></p>',
    ]
    text = "\n".join(text_parts)
    html_body = "<!doctype html><html><body>" + "\n".join(html_parts) + "</body></html>"

    message = EmailMessage(policy=SMTPUTF8)
    message["Subject"] = subject
    message["From"] = Address(display_name=from_name, addr_spec=from_address)
    if values["email"]:
        if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", values["email"]):
            raise MergeError("email", f"the customer's email '{values['email']}' is not valid")
        try:
            message["To"] = Address(display_name=values["name"], addr_spec=values["email"])
        except (ValueError, IndexError, errors.HeaderParseError) as exc:
            raise MergeError("email", f"the customer's email is not valid: {exc}") from exc
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    headers = {
        k: str(v) for k, v in message.items() if k.lower() not in ("content-type", "mime-version")
    }
    # SMTPUTF8: names and addresses outside ASCII are sent as UTF-8 (RFC 6532), not refused.
    raw = message.as_string()
    return Rendered(subject, preheader, html_body, text, headers, raw)

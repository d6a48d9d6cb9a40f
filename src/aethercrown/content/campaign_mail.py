"""The email of a churn or upsell campaign, written for one customer: the offline writer, what a
provider is told, and the check a provider's copy must pass.

A campaign's brief holds what the email is about: the customer's name and plan, why the
campaign was opened (the churn model's top risk factors, or usage against the plan's capacity)
and the offer (the retention discount, or the recommended plan and its price). The email is a
``mail.letter`` like any other, so it renders with the unsubscribe link, the postal address and
the List-Unsubscribe headers. Pure: plain values in and out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aethercrown.content import mail
from aethercrown.content.facts import ProductFacts, contains_banned
from aethercrown.content.writer import seed_for
from aethercrown.core.money import money

CampaignKind = Literal["churn", "upsell"]


@dataclass(frozen=True)
class CampaignBrief:
    """One campaign's facts about its customer, as the churn or metering domain gave them."""

    campaign: CampaignKind
    campaign_id: str
    customer: str  # external id
    name: str
    plan: str | None
    # churn
    risk_level: str | None = None
    discount_percent: int = 0
    actions: tuple[str, ...] = ()
    factors: tuple[dict[str, Any], ...] = ()
    # upsell
    recommended_plan: str | None = None
    monthly_price: int | None = None
    currency: str | None = None
    reasons: tuple[dict[str, Any], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("actions", "factors", "reasons"):
            out[key] = list(out[key])
        return out


def _safe(text: str | None) -> str:
    """A customer's value baked into copy: one line, and no braces (it must never read as a
    merge field when the email is rendered)."""
    return re.sub(r"\s+", " ", re.sub(r"[{}]", "", text or "")).strip()


def first_name(brief: CampaignBrief) -> str:
    parts = _safe(brief.name).split()
    return parts[0] if parts else ""


# Why the churn model thinks a customer may leave, in words a customer reads without offence:
# only factors that raise the risk are named, and numbers only where their unit is plain.
_FACTOR_PHRASES: dict[str, Callable[[float | None], str]] = {
    "days_since_last_login": lambda v: (
        f"nobody on your team has signed in for {v:.0f} days"
        if v is not None and v >= 2
        else "your team has been signing in less often"
    ),
    "session_frequency": lambda v: "your team has been signing in less often",
    "avg_session_duration": lambda v: "sessions have been getting shorter",
    "feature_usage": lambda v: "fewer features are in use than before",
    "session_trend": lambda v: "use of the product has been dropping off",
    "feature_trend": lambda v: "fewer features are in use each week",
    "support_tickets": lambda v: "you have needed our support team more than usual",
    "open_tickets": lambda v: (
        f"{v:.0f} of your support requests are still open"
        if v is not None and v >= 1
        else "a support request is still open"
    ),
    "unhappy_tickets": lambda v: "some support conversations did not end well",
    "satisfaction": lambda v: "your last satisfaction rating was lower than we want",
    "payment_issues": lambda v: "a recent payment did not go through",
}


def risk_reasons(brief: CampaignBrief, most: int = 2) -> list[str]:
    """The customer's top factors that raise the risk, as phrases (known features only)."""
    out: list[str] = []
    for factor in brief.factors:
        phrase = _FACTOR_PHRASES.get(str(factor.get("feature")))
        if phrase is None or factor.get("direction") != "raises_risk":
            continue
        value = factor.get("value")
        text = phrase(float(value) if isinstance(value, int | float) else None)
        if text not in out:
            out.append(text)
        if len(out) == most:
            break
    return out


def _metric(name: str) -> str:
    return _safe(name).replace("_", " ")


def usage_reasons(brief: CampaignBrief) -> list[str]:
    """Usage against the plan's capacity, from the upsell triggers that held."""
    plan = f"your {_safe(brief.plan)} plan" if brief.plan else "your plan"
    out: list[str] = []
    for reason in brief.reasons:
        metric, value = _metric(str(reason.get("metric", ""))), reason.get("value")
        if not isinstance(value, int | float):
            continue
        trigger = reason.get("trigger")
        if trigger == "growth":
            out.append(f"your use of {metric} grew {value:.0%} on the same days of the last period")
        elif trigger == "sustained_high_usage":
            out.append(
                f"your use of {metric} has run above {value:.0%} of {plan}'s capacity every day "
                "lately"
            )
        elif trigger == "projected_over_capacity":
            out.append(
                f"at this pace your use of {metric} will reach {value:.0%} of {plan}'s "
                "capacity before the period ends"
            )
    return out


def offer(brief: CampaignBrief) -> str | None:
    """The offer in a few words, or None when the campaign makes none (gentle re-engagement)."""
    plan = _safe(brief.plan)
    if brief.campaign == "churn":
        if brief.discount_percent <= 0:
            return None
        on = f"your {plan} plan" if plan else "your plan"
        return f"a {brief.discount_percent} % discount on {on}"
    if not brief.recommended_plan:
        return None
    price = (
        f" at {money(brief.monthly_price, brief.currency or 'USD')} a month"
        if brief.monthly_price is not None
        else ""
    )
    return f"the {_safe(brief.recommended_plan)} plan{price}"


def offer_marks(brief: CampaignBrief) -> list[str]:
    """What copy about the offer must name (any one of them), for checking a provider's copy."""
    if brief.campaign == "churn":
        d = brief.discount_percent
        return [f"{d} %", f"{d}%", f"{d} percent"] if d > 0 else []
    return [_safe(brief.recommended_plan)] if brief.recommended_plan else []


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def write_campaign_email(
    facts: ProductFacts, brief: CampaignBrief, seed: int = 0
) -> dict[str, Any]:
    """The offline writer: one email for one campaign's customer, varied by the seed and the
    campaign, from the tenant's facts and the brief alone."""
    rng = random.Random(seed_for("campaign", brief.campaign, brief.campaign_id, str(seed)))
    name = first_name(brief)
    product = facts.product_name
    vps = list(facts.value_propositions) or ["get more done"]
    rng.shuffle(vps)
    vp = vps[0]
    features = list(facts.features)
    rng.shuffle(features)
    the_offer = offer(brief)
    if brief.campaign == "churn":
        subject, intro, paragraphs = _churn_copy(brief, rng, name, product, the_offer)
    else:
        subject, intro, paragraphs = _upsell_copy(brief, rng, name, product, the_offer)
    for i, feature in enumerate(features[: 2 if the_offer is None else 1]):
        # Each feature with its own value proposition; none twice (the second feature goes
        # without one when the tenant gave a single proposition).
        text = f"{feature.name} {feature.does.rstrip('.')}"
        if i < len(vps):
            text += f", so you can {vps[(i + 1) % len(vps)]}"
        paragraphs.insert(-1 if the_offer else len(paragraphs), text + ".")
    proof = facts.proof_points[0].rstrip(".") + "." if facts.proof_points else ""
    if proof and contains_banned(proof, facts.banned_words) is None:
        paragraphs.append(proof)
    paragraphs = [p for p in paragraphs if contains_banned(p, facts.banned_words) is None]
    body = mail.letter(
        facts,
        subject=(subject[:1].upper() + subject[1:])[: mail.SUBJECT_MAX],
        preheader=f"How {product} helps you {vp}.",
        intro=intro,
        sections=[mail.Section(None, text) for text in paragraphs],
    )
    if name:
        body["greeting"] = f"Hi {name},"
    return body


def _churn_copy(
    brief: CampaignBrief, rng: random.Random, name: str, product: str, the_offer: str | None
) -> tuple[str, str, list[str]]:
    reasons = risk_reasons(brief)
    who = f"{name}, " if name else ""
    if the_offer:
        subject = rng.choice(
            (
                f"{who}{the_offer} from {product}",
                f"{who}we'd like to help: {the_offer}",
            )
        )
    else:
        subject = rng.choice(
            (f"{who}a few ideas for getting more from {product}", f"{who}how is {product} going?")
        )
    plan = _safe(brief.plan)
    on_plan = f" on the {plan} plan" if plan else ""
    if reasons:
        intro = (
            f"We noticed {_join(reasons)}, so we wanted to check in on how {product} is "
            f"working for you{on_plan}."
        )
    else:
        intro = f"We wanted to check in on how {product} is working for you{on_plan}."
    paragraphs: list[str] = []
    if the_offer:
        offer_text = f"To make the next months easier, we would like to offer you {the_offer}."
        if "personal_outreach" in brief.actions:
            offer_text += " Someone from our team will also reach out to help you set things up."
        paragraphs.append(offer_text)
    return subject, intro, paragraphs


def _upsell_copy(
    brief: CampaignBrief, rng: random.Random, name: str, product: str, the_offer: str | None
) -> tuple[str, str, list[str]]:
    reasons = usage_reasons(brief)
    who = f"{name}, " if name else ""
    target = _safe(brief.recommended_plan) or "a larger plan"
    subject = rng.choice(
        (f"{who}your team is outgrowing its plan", f"{who}more room to grow with {target}")
    )
    if reasons:
        intro = f"Good news: {_join(reasons[:2])}."
    else:
        intro = f"Your team is getting a lot out of {product}."
    paragraphs: list[str] = []
    if the_offer:
        paragraphs.append(
            f"So that nothing slows you down, we recommend {the_offer}: more capacity, with "
            "everything you use today carried over."
        )
    return subject, intro, paragraphs


def campaign_validator(
    facts: ProductFacts, brief: CampaignBrief
) -> Callable[[dict[str, Any]], str | None]:
    """A provider's campaign email passes the email checks and names the offer."""
    base = mail.copy_validator(facts, sections=None)
    marks = offer_marks(brief)

    def validate(data: dict[str, Any]) -> str | None:
        problem = base(data)
        if problem is not None or not marks:
            return problem
        copy = " ".join([data["subject"], data["intro"], *data["paragraphs"]]).lower()
        if not any(mark.lower() in copy for mark in marks):
            return f"the email must state the offer ({offer(brief)})"
        return None

    return validate

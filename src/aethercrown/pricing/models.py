"""The tenant's own plans (what its customers buy) and its pricing factor tables.

Distinct from the platform tiers in ``tenants`` (what the tenant buys from the operator).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aethercrown.core.tenancy import TenantScoped
from aethercrown.db.base import Base, Timestamps, UUIDPrimaryKey


class PricePlan(TenantScoped, UUIDPrimaryKey, Timestamps, Base):
    """One plan of the tenant's: a monthly price, capacities per metric and overage prices."""

    __tablename__ = "price_plans"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    slug: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)
    monthly_price: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # metric -> units included per billing period
    capacities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # metric -> {"unit_amount": minor units, "per": units}: each started package of `per`
    # units beyond capacity costs unit_amount.
    overage: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PricingFactors(TenantScoped, Timestamps, Base):
    """The factor tables of the seed pricing formula, one row per tenant."""

    __tablename__ = "pricing_factors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    __table_args__ = (UniqueConstraint("tenant_id"),)

"""``where_given``: a list's optional equality filters, where None means "any"."""

from __future__ import annotations

from sqlalchemy import Engine, select

from aethercrown.core.models import Tenant
from aethercrown.core.tenancy import where_given
from tests.conftest import TenantHandle


def test_only_the_given_values_filter(
    db: Engine, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    everyone = select(Tenant.slug).order_by(Tenant.slug)
    with db.connect() as conn:
        none_given = conn.scalars(where_given(everyone, (Tenant.status, None))).all()
        one_given = conn.scalars(
            where_given(everyone, (Tenant.status, "active"), (Tenant.tier_slug, "starter"))
        ).all()
        # An empty string is a value: the callers that treat it as "any" pass ``value or None``.
        empty_given = conn.scalars(where_given(everyone, (Tenant.slug, ""))).all()
    assert none_given == [tenant.slug, other_tenant.slug]
    assert one_given == [other_tenant.slug]
    assert empty_given == []


def test_the_sql_is_the_hand_written_chain() -> None:
    by_hand = select(Tenant).where(Tenant.status == "active").where(Tenant.tier_slug == "starter")
    given = where_given(
        select(Tenant),
        (Tenant.status, "active"),
        (Tenant.slug, None),
        (Tenant.tier_slug, "starter"),
    )
    assert str(given) == str(by_hand)

"""The demo company onboards a few enterprise customers through the real steps: some finish,
the last stays blocked on its support webhook; loading again onboards nobody twice."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.core.models import Tenant
from aethercrown.db.session import read_transaction
from aethercrown.onboarding import service
from aethercrown.onboarding.models import Onboarding
from aethercrown.simulate.service import load_demo
from tests.simulate.test_load import SMALL


def test_the_demo_onboards_enterprise_customers_one_blocked(
    session_factory: sessionmaker[Session],
) -> None:
    load_demo(session_factory, "sim-demo", SMALL, replay=False)
    with read_transaction(session_factory) as session:
        tenant_id = session.scalars(select(Tenant.id).where(Tenant.slug == "sim-demo")).one()
        listed = service.list_onboardings(session, tenant_id)
        assert len(listed) >= 2
        statuses = sorted(o.status for o in listed)
        assert statuses.count("blocked") == 1 and statuses.count("completed") == len(listed) - 1
        (blocked,) = [o for o in listed if o.status == "blocked"]
        assert blocked.current_step == "support_channel_setup"
        report = service.report(session, tenant_id, blocked.id)
        assert report.blockers[0].reason == "support webhook answered 503"
        assert report.blockers[0].next_attempt_at is not None
    load_demo(session_factory, "sim-demo", SMALL, replay=False)
    with read_transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Onboarding)) == len(listed)

"""Loads the hand-computed company of fixtures.py into a tenant's tables."""

from __future__ import annotations

import uuid

import pytest

from tests.analytics.fixtures import load_company
from tests.conftest import TenantHandle


@pytest.fixture
def company(session_factory, tenant: TenantHandle) -> dict[str, uuid.UUID]:  # type: ignore[no-untyped-def]
    return load_company(session_factory, tenant.uid)

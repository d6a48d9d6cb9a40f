"""A process that works an onboarding and stops dead inside step ``stop_at``'s unit of work,
after the step's work and before its commit: the test SIGKILLs it there.

    python -m tests.onboarding.flow_process <database url> <tenant id> <onboarding id> <stop_at>
"""

from __future__ import annotations

import sys
import time
import uuid

from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.onboarding import service


def main() -> None:
    url, tenant_id, onboarding_id, stop_at = sys.argv[1:5]
    factory = make_session_factory(make_engine(url))

    def hook(position: int) -> None:
        if position == int(stop_at):
            print(f"inside step {position}", flush=True)
            time.sleep(600)

    service.advance(
        factory,
        uuid.UUID(tenant_id),
        uuid.UUID(onboarding_id),
        allow_loopback=True,
        before_commit=hook,
    )
    print("finished", flush=True)


if __name__ == "__main__":
    main()

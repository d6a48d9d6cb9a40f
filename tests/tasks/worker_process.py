"""A worker process for the kill test: claims one task, reports it, then works "forever"."""

from __future__ import annotations

import sys
import time
import uuid

from aethercrown.db.engine import make_engine, make_session_factory
from aethercrown.db.session import write_transaction
from aethercrown.tasks import schemas, service


def main(url: str, tenant_id: str, worker_id: str, lease_seconds: int) -> None:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with write_transaction(factory) as session:
        body = schemas.AssignRequest(worker_id=uuid.UUID(worker_id), lease_seconds=lease_seconds)
        result = service.assign(session, uuid.UUID(tenant_id), body, "worker-process")
    print(",".join(a.task.id for a in result.assigned), flush=True)
    time.sleep(600)  # killed by the test long before this ends


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))

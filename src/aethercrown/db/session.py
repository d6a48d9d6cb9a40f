"""The request-scoped database session: one unit of work per request, committed before the
response is sent, so anything acknowledged is durable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session


def get_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the commit runs when the endpoint returns, before the response goes out.
DbSession = Annotated[Session, Depends(get_session, scope="function")]

"""The request-scoped database session: one unit of work per request, committed before the
response is sent, so anything acknowledged is durable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from aethercrown.db.engine import write_transaction


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


def get_write_session(request: Request, session: DbSession) -> Iterator[Session]:
    """A unit of work holding the write lock from its first statement, for routes that read
    then write under concurrency (claims, quota checks): BEGIN IMMEDIATE on SQLite, an ordinary
    transaction (with the route's row locks) on PostgreSQL.

    The request session, which authentication used, is committed first: on SQLite it may hold
    the write lock after recording a key's last use, and BEGIN IMMEDIATE would wait on it.
    """
    session.commit()
    with write_transaction(request.app.state.session_factory) as writer:
        yield writer


WriteSession = Annotated[Session, Depends(get_write_session, scope="function")]

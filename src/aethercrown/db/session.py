"""The request-scoped database session: one unit of work per request, committed before the
response is sent, so anything acknowledged is durable.

The session is opened and closed on the event loop: a request that only read ends with a cheap
in-loop rollback, and only a request that wrote pays a worker-thread hop for its COMMIT (which
may wait on the disk). Whether it wrote is tracked by the listeners below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import ORMExecuteState, Session
from starlette.concurrency import run_in_threadpool

from aethercrown.core.errors import database_busy, is_database_busy
from aethercrown.db.engine import write_transaction

WROTE = "aethercrown_wrote"


@event.listens_for(Session, "after_flush")
def _mark_flush(session: Session, _context: Any) -> None:
    session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _mark_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


def _finish(session: Session) -> None:
    try:
        if session.info.get(WROTE) or session.new or session.dirty or session.deleted:
            session.commit()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        session.close()  # rolls back
        raise
    if session.info.get(WROTE) or session.new or session.dirty or session.deleted:
        await run_in_threadpool(_finish, session)
    else:
        session.close()


# scope="function": the commit runs when the endpoint returns, before the response goes out.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def get_write_session(request: Request, session: DbSession) -> Iterator[Session]:
    """A unit of work holding the write lock from its first statement, for routes that read
    then write under concurrency (claims, quota checks): BEGIN IMMEDIATE on SQLite, an ordinary
    transaction (with the route's row locks) on PostgreSQL.

    The request session, which authentication used, is ended first so that it holds no
    transaction of its own while the writer waits for the lock.
    """
    session.commit()
    try:
        with write_transaction(request.app.state.session_factory) as writer:
            yield writer
    except OperationalError as exc:
        if not is_database_busy(exc):
            raise
        raise database_busy() from exc


WriteSession = Annotated[Session, Depends(get_write_session, scope="function")]

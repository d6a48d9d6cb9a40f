"""Cursor pagination over a unique, ordered key (UUIDv7 ids sort by creation)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from aethercrown.core.errors import ProblemError

T = TypeVar("T")
MAX_LIMIT = 500


class PageParams(BaseModel):
    limit: int = 50
    cursor: str | None = None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="From next_cursor")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


Pagination = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value, default=str)).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise ProblemError(
            400, "invalid-cursor", "Invalid cursor", "The cursor is malformed; use next_cursor"
        ) from exc


def paginate(
    session: Session,
    stmt: Select[Any],
    key: InstrumentedAttribute[Any],
    params: PageParams,
    *,
    parse: Callable[[Any], Any] = lambda v: v,
    descending: bool = False,
) -> tuple[Sequence[Any], str | None]:
    """One page of ``stmt`` ordered by ``key``; returns the rows and the next cursor."""
    if params.cursor is not None:
        try:
            after = parse(decode_cursor(params.cursor))
        except (TypeError, ValueError) as exc:
            raise ProblemError(
                400, "invalid-cursor", "Invalid cursor", "The cursor is malformed"
            ) from exc
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(key.desc() if descending else key).limit(params.limit + 1)
    rows = session.scalars(stmt).all()
    next_cursor = None
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        next_cursor = encode_cursor(getattr(rows[-1], key.key))
    return rows, next_cursor

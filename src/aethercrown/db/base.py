"""Declarative base, portable column types and identifiers shared by every domain's tables."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    Uuid,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from aethercrown.clock import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so ids sort by creation and cursor pagination can use them alone.
    Read off the wall clock, not ``utcnow``: ids order rows by when they were written, and a
    replay that moves the clock through the past must not slip its rows before earlier ones."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b, 62 bits
    return uuid.UUID(int=value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both SQLite (which stores naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON that is JSONB (indexable, compact) on PostgreSQL and JSON text on SQLite.
PortableJSON = JSON().with_variant(JSONB(), "postgresql")

# A 64-bit surrogate key that still autoincrements on SQLite (only INTEGER PRIMARY KEY does).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: PortableJSON,
        list[Any]: PortableJSON,
    }


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def postgres_text_array(values: Collection[str]) -> str:
    """PostgreSQL's literal of a text array holding ``values``: each element double-quoted,
    with backslash and double quote escaped (nothing else is special inside the quotes)."""
    try:
        listed = orjson.dumps(list(values)).decode()
    except orjson.JSONEncodeError:  # a lone surrogate: not UTF-8, quoted by hand below
        listed = "\\"
    # JSON quotes strings the same way unless it escaped something (a quote, a backslash, a
    # control character: the JSON escapes of the last differ), so only then element by element.
    if "\\" not in listed:
        return "{" + listed[1:-1] + "}"
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


class _PostgresTextArrayLiteral(TypeDecorator[str]):
    """A ``varchar[]`` parameter whose value is already its literal text (see ``in_strings``)."""

    impl = postgresql.ARRAY(String)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


def in_strings(session: Session, column: Any, values: Collection[str]) -> ColumnElement[bool]:
    """``column IN values`` with the whole list as one bound parameter.

    Rendering thousands of expanding bind parameters costs more than the lookup itself, so the
    list travels as one array (PostgreSQL ``= ANY``) or one JSON text (SQLite ``json_each``).
    """
    if session.get_bind().dialect.name == "postgresql":
        # Sent as the text of an array literal: psycopg's own list dumper quotes element by
        # element with a regex, which cost more than the lookup for a Segment batch's 500 user
        # ids. Bound as the array type itself (not a text cast to it), so the planner sees a
        # constant array: a cast of text is not folded, its estimates go wrong, and the Stripe
        # mapping's lookups ran 3-4x slower with it.
        literal = bindparam(None, postgres_text_array(values), type_=_PostgresTextArrayLiteral())
        return column == any_(literal)
    listed = func.json_each(bindparam(None, orjson.dumps(list(values)).decode(), type_=String))
    return column.in_(select(listed.table_valued("value").c.value))

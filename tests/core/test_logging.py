"""core.logging: the access log's line written without a LogRecord is the line the record
gives, and any other configuration goes through a record."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from aethercrown.core.logging import configure_logging, info_fields, request_id_var


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """configure_logging's handler, writing to a buffer."""
    configure_logging("INFO", json=True)
    handler = logging.getLogger("aethercrown").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    token = request_id_var.set("0123456789abcdef0123456789abcdef")
    try:
        yield out
    finally:
        request_id_var.reset(token)
        configure_logging("INFO", json=True)


def _alone() -> logging.Handler:
    """configure_logging's handler alone on its logger: pytest adds its capture handlers
    beside it for each phase of a test (they get records through the record path)."""
    root = logging.getLogger("aethercrown")
    root.handlers[:] = root.handlers[:1]
    return root.handlers[0]


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_fast_line_is_the_records_line(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    records: list[str] = []
    make_record = logging.Logger.makeRecord

    def counted(self: logging.Logger, *args: object, **kwargs: object) -> logging.LogRecord:
        records.append(self.name)
        return make_record(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(logging.Logger, "makeRecord", counted)
    log = logging.getLogger("aethercrown.access")
    handler = _alone()
    fields = {"method": "GET", "path": "/x/é", "route": "/x/{id}", "status": 200, "ms": 0.15}
    info_fields(log, "request", {**fields, "id": uuid.UUID(int=7)})
    assert records == []  # written without a record
    handler.addFilter(lambda record: True)  # a filter: the record path
    info_fields(log, "request", {**fields, "id": uuid.UUID(int=7)})
    assert records == ["aethercrown.access"]
    fast, slow = _lines(stream)
    assert list(fast) == list(slow)  # the same keys in the same order
    assert {**fast, "ts": None} == {**slow, "ts": None}
    assert fast["request_id"] == "0123456789abcdef0123456789abcdef"
    assert datetime.fromisoformat(str(fast["ts"])).utcoffset() is not None


def test_filters_levels_and_other_handlers_are_honoured(stream: io.StringIO) -> None:
    log = logging.getLogger("aethercrown.access")
    _alone()
    log.addFilter(lambda record: False)
    try:
        info_fields(log, "request", {"status": 200})
    finally:
        log.filters.clear()
    logging.getLogger("aethercrown").setLevel("WARNING")
    info_fields(log, "request", {"status": 200})
    assert stream.getvalue() == ""
    logging.getLogger("aethercrown").setLevel("INFO")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    log.addHandler(Keep())
    try:
        info_fields(log, "request", {"status": 201})
    finally:
        log.handlers.clear()
    assert [record.status for record in seen] == [201]  # type: ignore[attr-defined]
    assert [line["status"] for line in _lines(stream)] == [201]  # and propagated as before

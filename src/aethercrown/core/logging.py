"""Structured JSON logs carrying the request id of the request being served."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def info_fields(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """``logger.info(msg, extra=fields)``, for a line per request (the access log).

    Where the line goes only to ``configure_logging``'s handler (a ``StreamHandler`` with a
    ``JsonFormatter``, on the logger's parent, no filters anywhere), the same line is written
    without a ``LogRecord``: building and formatting one (its ~25 attributes walked for the
    extra fields) was a tenth of the authenticated read's CPU. Otherwise, or if the write
    fails (the handler's error handling needs a record), the record is built and handled as
    ``log.info`` does, without its walk up the stack for the caller (no formatter prints it).
    Fields must not be named as a ``LogRecord``'s attributes (``extra`` refuses those too)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _only_json_handler(logger)
    if handler is not None:
        entry: dict[str, Any] = {
            # orjson writes an aware datetime as isoformat() does, at half its cost.
            "ts": datetime.fromtimestamp(time.time(), UTC),
            "level": "info",
            "logger": logger.name,
            "msg": msg,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(fields)
        line = orjson.dumps(entry, default=str).decode() + handler.terminator
        handler.acquire()
        try:
            handler.stream.write(line)
            handler.flush()
            return
        except Exception:  # the record path below writes it again and reports the error
            pass
        finally:
            handler.release()
    logger.handle(logger.makeRecord(logger.name, logging.INFO, "", 0, msg, (), None, None, fields))


def _only_json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler a record of ``logger`` reaches, if that is ``configure_logging``'s
    plain JSON stream handler and nothing filters on the way; else None."""
    parent = logger.parent
    if (
        logger.handlers
        or logger.filters
        or not logger.propagate
        or parent is None
        or parent.filters
        or parent.propagate
        or len(parent.handlers) != 1
    ):
        return None
    handler = parent.handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not JsonFormatter
    ):
        return None
    return handler


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("aethercrown")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False

"""Input limits, in one place: what any request may carry, checked once before any route runs.

PostgreSQL's text cannot hold NUL while SQLite's can, and JSON serialisers give up at a nesting
depth below the parsers' (orjson: 255 levels), so without these limits the same input was stored
on one backend and a 500 on the other. Every request is held to the same limits:

- no NUL character in the path, the query string, a body string or a JSON key;
- JSON nested at most ``MAX_JSON_DEPTH`` levels;
- no body string longer than ``MAX_STRING_CHARS`` characters, no JSON key longer than
  ``MAX_KEY_CHARS``;
- no lone UTF-16 surrogate escape (``"\\ud800"``), which no database can encode.

A violation is a 422 problem+json naming the limit and the field; nothing runs behind it.

Bodies are checked cheaply: GET, HEAD, OPTIONS and DELETE requests are not read at all, and a
body is parsed only when a byte-level scan says it may break a limit (a ``\\u0000`` or a
``\\ud8xx`` escape, more brackets than the depth limit allows and a deeper nesting counted over
the raw bytes, or a raw string longer than the limit). Schemas keep their own, tighter limits
(column lengths); these are the floor under all of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from starlette.types import Message, Receive, Scope, Send

from aethercrown.core.asgi import HttpMiddleware
from aethercrown.core.errors import field_error, problem_response

MAX_JSON_DEPTH = 32
MAX_STRING_CHARS = 100_000
MAX_KEY_CHARS = 256
# Years a calendar period (YYYY-MM) or date may name: arithmetic a year or two past them stays
# inside Python's date range (year 9999), and before 2000 no SaaS data is expected.
MIN_YEAR = 2000
MAX_YEAR = 2999
PERIOD_PATTERN = r"^(2\d{3})-(0[1-9]|1[0-2])$"

# Methods whose body the API reads. DELETE bodies are ignored by every route.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_QUOTE = ord('"')
# A run of more than MAX_KEY_CHARS bytes between quotes, then a colon: maybe a key too long.
_LONG_KEY = re.compile(rb'"[^"]{%d,}"\s*:' % (MAX_KEY_CHARS + 1))
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[list(b"[{")] = 1
_BRACKET_STEP[list(b"]}")] = -1


@dataclass(frozen=True)
class Violation:
    """One broken limit: which (a stable slug), its value, where, and what was found."""

    limit: str
    value: int | None
    loc: tuple[str | int, ...]
    message: str


# --- the byte-level pre-check -------------------------------------------------------------------


def _may_break_limits(body: bytes) -> bool:
    """False when the body cannot break any limit (the common case, decided in C-speed scans);
    True when it might, and the exact check must parse it. Never False for a body that breaks
    one."""
    if b"\\u0000" in body or _SURROGATE_ESCAPE.search(body) is not None:
        return True
    if b"\x00" in body:
        return True
    brackets = body.count(b"[") + body.count(b"{")
    if brackets <= MAX_JSON_DEPTH and len(body) <= MAX_KEY_CHARS:
        return False
    # Escapes (\" and \\ included) become two neutral bytes: every quote left then opens or
    # closes a string.
    text = _ESCAPE.sub(b"__", body) if b"\\" in body else body
    if len(body) > MAX_KEY_CHARS and _LONG_KEY.search(text) is not None:
        return True
    if brackets > MAX_JSON_DEPTH:
        # Only quotes and brackets matter for the depth; brackets inside strings do not count.
        structure = np.frombuffer(text.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
        inside = (np.cumsum(structure == _QUOTE, dtype=np.int32) & 1).astype(bool)
        steps = np.where(inside, 0, _BRACKET_STEP[structure])
        if int(np.cumsum(steps, dtype=np.int32).max(initial=0)) > MAX_JSON_DEPTH:
            return True
    if len(body) > MAX_STRING_CHARS:
        # A string of N characters takes at least N bytes between its quotes.
        positions = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == _QUOTE)
        paired = len(positions) // 2 * 2
        spans = positions[1:paired:2] - positions[0:paired:2] - 1
        if spans.size and int(spans.max()) > MAX_STRING_CHARS:
            return True
    return False


# --- the exact check ---------------------------------------------------------------------------


def _string_violation(value: str, loc: tuple[str | int, ...], key: bool) -> Violation | None:
    what = "key" if key else "string"
    if "\x00" in value:
        return Violation("nul-character", None, loc, f"a {what} must not contain NUL (\\u0000)")
    longest = MAX_KEY_CHARS if key else MAX_STRING_CHARS
    if len(value) > longest:
        return Violation(
            "max-key-length" if key else "max-string-length",
            longest,
            loc,
            f"a {what} of {len(value)} characters is longer than {longest}",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return Violation(
            "lone-surrogate", None, loc, f"a {what} holds a lone UTF-16 surrogate escape"
        )
    return None


def find_violation(value: Any, loc: tuple[str | int, ...] = (), depth: int = 0) -> Violation | None:
    """The first limit that a parsed JSON value breaks, with the path to it; None if none."""
    if isinstance(value, str):
        return _string_violation(value, loc, key=False)
    if isinstance(value, dict | list):
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return Violation(
                "max-json-depth",
                MAX_JSON_DEPTH,
                loc,
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
            )
        if isinstance(value, dict):
            for key, item in value.items():
                found = _string_violation(key, (*loc, key[:MAX_KEY_CHARS]), key=True)
                if found is None:
                    found = find_violation(item, (*loc, key), depth)
                if found is not None:
                    return found
        else:
            for index, item in enumerate(value):
                found = find_violation(item, (*loc, index), depth)
                if found is not None:
                    return found
    return None


def check_body(body: bytes) -> Violation | None:
    """The first limit a request body breaks: a JSON document, NDJSON (one a line), or any other
    bytes (where only a raw NUL counts). A body that is not JSON at all is left to the route."""
    if not body or not _may_break_limits(body):
        return None
    try:
        return find_violation(json.loads(body))
    except RecursionError:
        return Violation("max-json-depth", MAX_JSON_DEPTH, (), "JSON nested far too deep")
    except ValueError:
        pass  # not one JSON document: NDJSON, or not JSON
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found = find_violation(json.loads(line), (number,))
        except RecursionError:
            return Violation("max-json-depth", MAX_JSON_DEPTH, (number,), "JSON nested too deep")
        except ValueError:
            break  # not NDJSON either
        if found is not None:
            return found
    if b"\x00" in body:
        return Violation("nul-character", None, (), "the body must not contain NUL bytes")
    return None


def check_path_and_query(path: str, query_string: bytes) -> Violation | None:
    if "\x00" in path:
        return Violation("nul-character", None, ("path",), "the path must not contain NUL (%00)")
    if b"%00" in query_string or b"\x00" in query_string:
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return Violation(
                    "nul-character",
                    None,
                    ("query", name.replace("\x00", "")),
                    "a query parameter must not contain NUL (%00)",
                )
        return Violation("nul-character", None, ("query",), "the query must not contain NUL")
    return None


def violation_error(violation: Violation, where: str) -> dict[str, Any]:
    loc: Sequence[str | int] = (where, *violation.loc) if where else violation.loc
    error = field_error(loc, violation.message, "limit_" + violation.limit.replace("-", "_"))
    error["limit"] = violation.limit
    if violation.value is not None:
        error["limit_value"] = violation.value
    return error


def limits_document() -> Mapping[str, int]:
    """The limits as the error answers and the docs state them."""
    return {
        "max_json_depth": MAX_JSON_DEPTH,
        "max_string_chars": MAX_STRING_CHARS,
        "max_key_chars": MAX_KEY_CHARS,
    }


# --- the middleware ---------------------------------------------------------------------------


class InputLimitsMiddleware(HttpMiddleware):
    """Pure ASGI: checks the path and query of every request, and the body of POST, PUT and
    PATCH requests (read once here, then handed on unchanged)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        violation = check_path_and_query(scope["path"], scope.get("query_string", b""))
        if violation is not None:
            await self._reject(scope, receive, send, violation, "")
            return
        if scope["method"] not in _BODY_METHODS or _is_form(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        violation = check_body(body)
        if violation is not None:
            await self._reject(scope, receive, send, violation, "body")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, violation: Violation, where: str
    ) -> None:
        error = violation_error(violation, where)
        response = problem_response(
            422,
            "input-limit",
            "Input limit exceeded",
            f"{error['field'] or where or 'request'}: {violation.message}",
            instance=scope["path"],
            errors=[error],
            limits=dict(limits_document()),
        )
        await response(scope, receive, send)


def _is_form(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.lower().startswith(_FORM_TYPES)
    return False

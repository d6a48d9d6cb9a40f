"""Writing through any OpenAI-compatible chat API (OpenAI, Ollama, vLLM, a llama.cpp server).

Transient failures (429, 5xx, timeouts, refused connections) are retried, waiting what the
server's Retry-After (or retry-after-ms) asks, capped; an answer that fails validation is asked
for again once, with the reason. When that still fails the caller falls back to the offline
writer and records why. No database here: callers must hold no transaction while this runs.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aethercrown.core.backoff import exponential_backoff

if TYPE_CHECKING:
    import openai

log = logging.getLogger("aethercrown.content.provider")

# A validator returns None when the parsed answer is usable, else what is wrong with it.
Validator = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class ProviderConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_seconds: float = 30.0
    max_retries: int = 3
    # The longest single wait a Retry-After may impose; longer asks give up instead.
    max_wait_seconds: float = 10.0
    base_backoff_seconds: float = 0.5
    # The whole generation (retries and the re-ask included) gives up after this long, so a
    # request never hangs on a failing provider; the offline writer answers instead.
    total_budget_seconds: float = 90.0


class ProviderFailed(Exception):
    """The provider gave no usable answer; ``reason`` says why (kept on the item)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Completion:
    data: dict[str, Any]
    model: str
    attempts: int


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """What the server asked to wait: retry-after-ms, else Retry-After in seconds or as a date."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _transient(exc: Exception) -> bool:
    import openai

    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def _describe(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} from the provider"
    if isinstance(exc, openai.APITimeoutError):
        return "the provider timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "the provider could not be reached"
    return f"{type(exc).__name__} from the provider"


def _parse(content: str | None) -> dict[str, Any]:
    if not content:
        raise ValueError("the answer was empty")
    text = content.strip()
    if text.startswith("```"):
        # Models often fence JSON in Markdown despite being asked not to.
        text = text.strip("`")
        text = text[text.find("{") :] if "{" in text else text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer was not JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ValueError("the answer was not a JSON object")
    return data


def complete_json(
    config: ProviderConfig,
    messages: list[dict[str, str]],
    validate: Validator,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Completion:
    """A JSON object from the provider that ``validate`` accepts; raises ProviderFailed."""
    # Imported on first use: the client takes a while to import, and most installations
    # never configure a provider.
    import openai

    try:
        client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "not-needed",
            timeout=config.timeout_seconds,
            max_retries=0,  # retried here, to honour Retry-After with our own cap
        )
    except Exception as exc:  # httpx refuses some URLs only here (a bad port, brackets)
        raise ProviderFailed(f"the provider's base URL is not usable: {exc}") from exc
    conversation = list(messages)
    deadline = time.monotonic() + config.total_budget_seconds
    attempts = 0
    reasked = False
    with client:
        while True:
            attempts += 1
            content, model = _call_with_retries(client, config, conversation, sleep, deadline)
            try:
                data = _parse(content)
                problem = validate(data)
            except ValueError as exc:
                problem = str(exc)
                data = {}
            if problem is None:
                return Completion(data=data, model=model, attempts=attempts)
            if reasked:
                raise ProviderFailed(f"invalid output after asking again: {problem}")
            reasked = True
            log.info("provider output rejected (%s); asking again", problem)
            conversation = [
                *messages,
                {"role": "assistant", "content": (content or "")[:20_000]},
                {
                    "role": "user",
                    "content": f"That answer cannot be used: {problem}. "
                    "Answer again with only the JSON object, fixing this.",
                },
            ]


def _call_with_retries(
    client: openai.OpenAI,
    config: ProviderConfig,
    conversation: list[dict[str, str]],
    sleep: Callable[[float], None],
    deadline: float,
) -> tuple[str | None, str]:
    import openai

    retries = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderFailed(f"no usable answer within {config.total_budget_seconds:.0f} s")
        try:
            response = client.chat.completions.create(  # type: ignore[call-overload]
                model=config.model,
                messages=conversation,
                temperature=0.7,
                response_format={"type": "json_object"},
                timeout=min(config.timeout_seconds, remaining),
            )
        except Exception as exc:  # anything the client raises means no answer: fall back
            if not isinstance(exc, openai.APIError) or not _transient(exc):
                raise ProviderFailed(_describe(exc)) from exc
            if retries >= config.max_retries:
                raise ProviderFailed(f"{_describe(exc)}, after {retries} retries") from exc
            response_headers = (
                exc.response.headers if isinstance(exc, openai.APIStatusError) else None
            )
            asked = retry_after_seconds(response_headers)
            if asked is not None and asked > config.max_wait_seconds:
                raise ProviderFailed(
                    f"{_describe(exc)}; Retry-After {asked:.0f} s exceeds the "
                    f"{config.max_wait_seconds:.0f} s cap"
                ) from exc
            wait = min(
                asked
                if asked is not None
                else exponential_backoff(
                    retries + 1, config.base_backoff_seconds, config.max_wait_seconds
                ),
                config.max_wait_seconds,
            )
            if time.monotonic() + wait >= deadline:
                raise ProviderFailed(
                    f"{_describe(exc)}; no time left in the {config.total_budget_seconds:.0f} s "
                    "budget to retry"
                ) from exc
            retries += 1
            sleep(wait)
            continue
        try:
            choice = response.choices[0]
            return choice.message.content, response.model or config.model
        except (AttributeError, IndexError, TypeError) as exc:
            raise ProviderFailed("the provider's answer had no message") from exc

"""One streamed chat request: retries, the budget, the watchdog, failures as LLMErrors.

Every chat call streams (answers, follow-up rewrites, the judge), because a model
on a CPU reads a long prompt for a minute or more before its first token, and a
non-streamed request would sit silent that long. Three limits apply:

- ``llm_connect_timeout``: opening the connection (a dead server fails this fast);
- ``llm_budget``: the whole answer, the wait for the first token included;
- ``llm_read_timeout``: the longest silence once the model has started writing.

429 and 5xx are retried ``llm_retries`` times with backoff. A request that timed
out is not retried against a local server unless ``llm_retry_timeouts`` says so:
llama.cpp keeps generating an abandoned request, so a retry queues behind it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

from rag.errors import LLMConfigError, LLMError
from rag.llm.events import Token, Waiting, drain
from rag.llm.failures import cut_error, is_connect_timeout, llm_error
from rag.llm.watchdog import Watchdog
from rag.openai_server import is_local, scrub, timeout, where
from rag.settings import Settings

OnRequest = Callable[[], None]  # called as a request goes to the LLM (the wait for it starts)


@dataclass
class Reply:
    """What the model sent: its text, token usage (None: not reported), finish reason."""

    text: str
    usage: dict | None
    finish: str


def ask_model(client, settings: Settings, prompt: str, *, max_tokens: int,
              temperature: float = 0) -> Reply:
    """One prompt to the configured chat model, within a fresh ``llm_budget``, with the
    answerer's streaming, retries and timeouts (``ask eval --judge`` asks with it).

    Raises :class:`LLMConfigError` for a rejected key or unknown model, and
    :class:`LLMError` otherwise, its message passed through :func:`scrub` (a server can
    echo the key)."""
    try:
        return stream_chat(client, settings, [{"role": "user", "content": prompt}],
                           max_tokens=max_tokens, temperature=temperature,
                           deadline=time.monotonic() + settings.llm_budget)
    except LLMConfigError:
        raise
    except LLMError as exc:
        raise LLMError(scrub(str(exc), settings)) from None  # not chained: no server text


def stream_chat(client, settings: Settings, messages: list[dict], *, max_tokens: int,
                deadline: float, on_text: Callable[[str], None] | None = None,
                temperature: float | None = None, on_request: OnRequest | None = None) -> Reply:
    """:func:`chat_events` with callbacks: ``on_request`` as the request goes out,
    ``on_text`` with each text delta as it arrives."""
    def handle(event: Waiting | Token) -> None:
        if isinstance(event, Waiting) and on_request is not None:
            on_request()
        elif isinstance(event, Token) and on_text is not None:
            on_text(event.text)

    return drain(chat_events(client, settings, messages, max_tokens=max_tokens,
                             deadline=deadline, temperature=temperature), handle)


def chat_events(client, settings: Settings, messages: list[dict], *, max_tokens: int,
                deadline: float, temperature: float | None = None, tokens: bool = True,
                ) -> Generator[Waiting | Token, None, Reply]:
    """One streamed chat request: ``Waiting`` as it goes out, a ``Token`` per text delta
    (the model's raw text; none if ``tokens`` is False: the caller reads the reply whole),
    and the whole :class:`Reply` as the generator's return value.

    Raises :class:`LLMError` with an honest one-line reason: cannot reach, no reply within
    the budget, HTTP status, or the stream closed/silent after N tokens.
    """
    kwargs = dict(model=settings.llm_model, messages=messages, max_tokens=max_tokens,
                  temperature=settings.llm_temperature if temperature is None else temperature,
                  stream=True, stream_options={"include_usage": True})
    yield Waiting()
    stream = _open_stream(client, settings, kwargs, deadline)
    dog = Watchdog(stream, deadline, settings.llm_read_timeout)
    dog.start()
    parts: list[str] = []
    usage, finish, failure = None, "", None
    chunks = iter(stream)
    try:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001  garbage mid-stream, dropped connection
                failure = exc
                break
            text, finish = _delta(chunk, finish)
            usage = _usage(getattr(chunk, "usage", None)) or usage
            if text:
                dog.last = time.monotonic()
                parts.append(text)
                if tokens:  # outside the inner try: a failing consumer is no LLM error
                    yield Token(text)
    finally:  # also when the consumer stops early: the stream and the watchdog end with it
        dog.stop()
        stream.close()
    if not finish:  # a finish_reason marks a complete reply, whatever the socket did next
        raise cut_error(settings, dog.reason, failure, len(parts))
    return Reply("".join(parts), usage, finish)


def _delta(chunk, finish: str) -> tuple[str, str]:
    """(the chunk's text, the finish reason so far)."""
    text = ""
    for choice in getattr(chunk, "choices", None) or ():
        text += getattr(getattr(choice, "delta", None), "content", None) or ""
        finish = getattr(choice, "finish_reason", None) or finish
    return text, finish


def _usage(raw) -> dict | None:
    out = {name: value for name in ("prompt_tokens", "completion_tokens", "total_tokens")
           if isinstance(value := getattr(raw, name, None), int)}
    return out or None


def _retry_timeouts(settings: Settings) -> bool:
    if settings.llm_retry_timeouts is not None:
        return settings.llm_retry_timeouts
    return not is_local(settings)


def _retry_wait(exc, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): the server's Retry-After, else 0.5 s
    doubling (0.5, 1, 2, ...), at most 8 s."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(8.0, max(0.0, float(value) * scale))
        except (TypeError, ValueError):
            continue
    return min(8.0, 0.5 * 2 ** (attempt - 1))


def _open_stream(client, settings: Settings, kwargs: dict, deadline: float):
    """Send the request; retry 429/5xx (and timeouts when allowed) within the budget."""
    import openai

    attempt = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LLMError(f"no reply from {where(settings)} within the "
                           f"{settings.llm_budget:g} s budget (ABSTRACTA_LLM_BUDGET)")
        # Waiting for the reply to begin: the whole budget when a timed-out request will not
        # be retried (a CPU model may read the prompt that long); else one read timeout, so
        # that a retry has time left.
        patience = min(remaining, settings.llm_read_timeout) if _retry_timeouts(settings) \
            else remaining
        try:
            return client.chat.completions.create(**kwargs, timeout=timeout(settings, patience))
        except openai.BadRequestError as exc:
            # Some servers reject stream_options; ask once more without it.
            if "stream_options" in kwargs and "stream_options" in str(exc):
                kwargs.pop("stream_options")
                continue
            raise llm_error(exc, settings) from None
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            status = getattr(exc, "status_code", None)
            retry = (status == 429 or (status or 0) >= 500) if status is not None else \
                _retry_timeouts(settings)
            if not retry or attempt >= settings.llm_retries \
                    or time.monotonic() + _retry_wait(exc, attempt + 1) >= deadline:
                if patience < remaining and isinstance(exc, openai.APITimeoutError) \
                        and not is_connect_timeout(exc):
                    raise LLMError(f"no reply from {where(settings)} within "
                                   f"{patience:g} s, after {attempt} retries "
                                   "(ABSTRACTA_LLM_READ_TIMEOUT)") from None
                raise llm_error(exc, settings) from None
            attempt += 1
            time.sleep(_retry_wait(exc, attempt))
        except Exception as exc:  # noqa: BLE001  every client failure becomes an LLMError
            raise llm_error(exc, settings) from None

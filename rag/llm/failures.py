"""A failed or cut chat request, said in the user's terms as an :class:`LLMError`.

Messages never quote the server's text (it can echo keys); :func:`scrub` guards
the one place a class name is quoted.
"""

from __future__ import annotations

from rag.errors import LLMConfigError, LLMError
from rag.openai_server import scrub, where
from rag.settings import Settings


def llm_error(exc: Exception, settings: Settings) -> LLMError:
    """One-line error for a request that failed before streaming."""
    import openai

    at, model = where(settings), settings.llm_model
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return LLMConfigError(f"The LLM server {at} rejected the API key "
                              f"({exc.status_code}): check OPENAI_API_KEY.")
    if isinstance(exc, openai.NotFoundError):
        return LLMConfigError(f"The LLM server {at} does not know the model '{model}' (404): "
                              "set ABSTRACTA_LLM_MODEL to a model it serves (or check "
                              "OPENAI_BASE_URL, which usually ends in /v1).")
    if isinstance(exc, openai.APITimeoutError):
        if is_connect_timeout(exc):
            return LLMError(f"cannot reach {at} (no connection within "
                            f"{settings.llm_connect_timeout:g} s)")
        return LLMError(f"no reply from {at} within the {settings.llm_budget:g} s budget "
                        "(ABSTRACTA_LLM_BUDGET)")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(f"cannot reach {at}")
    if isinstance(exc, openai.RateLimitError):
        return LLMError(f"{at} is rate-limiting requests (429) after "
                        f"{settings.llm_retries} retries")
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"{at} answered HTTP {exc.status_code}")
    if isinstance(exc, LLMError):
        return exc
    return LLMError(scrub(f"unreadable reply from {at} ({type(exc).__name__})", settings))


def is_connect_timeout(exc: Exception) -> bool:
    """Whether a timeout happened while connecting (httpx's cause says so), not reading."""
    cause = exc.__cause__
    return cause is not None and type(cause).__name__ in {"ConnectTimeout", "PoolTimeout"}


def cut_error(settings: Settings, reason: str, failure: Exception | None, n: int) -> LLMError:
    """Why a stream ended early (``reason``: the watchdog's, ``failure``: what the read
    raised), tokens counted as streamed pieces."""
    import openai

    at = where(settings)
    if reason == "budget":
        return LLMError(f"no complete answer from {at} within the {settings.llm_budget:g} s "
                        f"budget (ABSTRACTA_LLM_BUDGET); {n} tokens had arrived")
    if reason == "silent":
        return LLMError(f"{at} sent nothing for {settings.llm_read_timeout:g} s after {n} "
                        "tokens (ABSTRACTA_LLM_READ_TIMEOUT)")
    if failure is None or isinstance(failure, openai.APIConnectionError):
        return LLMError(f"the server {at} closed the stream after {n} tokens")
    return llm_error(failure, settings)

"""The polite HTTP client every feed fetches through.

Polite, as the feeds ask: a User-Agent naming Abstracta (and where it comes from), a
pause between two requests to one host when that host asks for it (arXiv: one request
every 3 seconds, ``Settings.arxiv_delay``), the server's ``Retry-After`` on 429 and
503 (a bounded number of times), and conditional requests (``If-None-Match`` /
``If-Modified-Since``) with the validators of the previous answer, so an unchanged
feed costs the server a 304.

Every failure is a :class:`rag.errors.FeedError` with a one-line message: the server
cannot be reached (:class:`FeedUnreachableError`, the sync stops), or one answer is
unusable (the caller leaves that page unsynced).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from rag.errors import FeedError, FeedUnreachableError
from rag.settings import Settings

USER_AGENT = "Abstracta/{version} (research-paper Q&A; +https://github.com/abstracta/abstracta)"
RETRY_STATUSES = {429, 500, 502, 503, 504}
BACKOFF = 2.0  # seconds before the first retry when the server gives no Retry-After


@dataclass(frozen=True)
class Response:
    """A usable answer: 200 with its body, or 304 (``not_modified``, no body)."""

    url: str
    body: bytes
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""
    not_modified: bool = False

    def validators(self) -> dict:
        """What the next request sends back to ask "changed since?"."""
        return {k: v for k, v in (("etag", self.etag), ("last_modified", self.last_modified))
                if v}


@dataclass
class Client:
    """One sync's HTTP client: ``get`` (spacing, retries, conditional requests).

    ``sleep`` is injectable so a caller can count waits; tests use the real one with
    zero-second spacing and ``Retry-After: 0``."""

    settings: Settings
    sleep: object = time.sleep
    _last: dict[str, float] = field(default_factory=dict)  # host -> time of its last request
    _http: object = None

    def __enter__(self) -> Client:
        from importlib.metadata import PackageNotFoundError, version

        import httpx

        try:
            ver = version("abstracta")
        except PackageNotFoundError:
            ver = "dev"
        timeout = httpx.Timeout(self.settings.feed_timeout, connect=min(
            10.0, self.settings.feed_timeout))
        # trust_env=False: a proxy is configured through the base-URL settings, never picked
        # up silently from the environment.
        self._http = httpx.Client(headers={"User-Agent": USER_AGENT.format(version=ver)},
                                  timeout=timeout, follow_redirects=True, trust_env=False)
        return self

    def __exit__(self, *exc) -> None:
        self._http.close()  # type: ignore[attr-defined]

    def get(self, url: str, params: dict | None = None, *, spacing: float = 0.0,
            validators: dict | None = None) -> Response:
        """GET ``url``: 200 or 304 as a Response; anything else a FeedError."""
        headers = {}
        if validators and validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators and validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        for attempt in range(self.settings.feed_retries + 1):
            self._space(url, spacing)
            reply = self._send(url, params, headers, attempt)
            if reply is None:  # a timeout, retried
                continue
            if reply.status_code in RETRY_STATUSES and attempt < self.settings.feed_retries:
                self.sleep(self._retry_after(url, reply, attempt))  # type: ignore[operator]
                continue
            return _usable(url, reply)
        raise FeedUnreachableError(
            f"{_where(url)} did not answer in {self.settings.feed_timeout:g} s "
            f"({self.settings.feed_retries + 1} tries); check the network, or run `ask sync` "
            "again later.")

    def _space(self, url: str, spacing: float) -> None:
        host = urlsplit(url).netloc
        last = self._last.get(host)
        if last is not None and spacing > 0:
            wait = last + spacing - time.monotonic()
            if wait > 0:
                self.sleep(wait)  # type: ignore[operator]
        self._last[host] = time.monotonic()

    def _send(self, url: str, params, headers, attempt: int):
        import httpx

        try:
            return self._http.get(url, params=params, headers=headers)  # type: ignore[attr-defined]
        except httpx.TimeoutException:
            if attempt < self.settings.feed_retries:
                self.sleep(BACKOFF * 2 ** attempt)  # type: ignore[operator]
                return None
            raise FeedUnreachableError(
                f"{_where(url)} did not answer in {self.settings.feed_timeout:g} s; check the "
                "network, or run `ask sync` again later.") from None
        except httpx.TransportError as exc:  # refused, DNS, TLS, reset
            raise FeedUnreachableError(
                f"Cannot reach {_where(url)} ({_reason(exc)}); check the network or the "
                "feed's URL setting. Nothing was changed.") from exc
        except httpx.InvalidURL as exc:
            raise FeedError(f"{_where(url)} is not a usable URL; check the feed's URL "
                            "setting.") from exc

    def _retry_after(self, url: str, reply, attempt: int) -> float:
        """Seconds to wait before retrying, as the server asks (bounded)."""
        raw = reply.headers.get("Retry-After", "").strip()
        wait = BACKOFF * 2 ** attempt
        if raw.isdigit():
            wait = float(raw)
        elif raw:
            with contextlib.suppress(TypeError, ValueError):  # unreadable: our backoff
                wait = max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        if wait > self.settings.feed_max_wait:
            raise FeedError(f"{_where(url)} is busy (HTTP {reply.status_code}) and asks to wait "
                            f"{wait:.0f} s; run `ask sync` again later.")
        return wait


def _usable(url: str, reply) -> Response:
    if reply.status_code == 304:
        return Response(url, b"", not_modified=True)
    if reply.status_code != 200:
        raise FeedError(f"{_where(url)} answered HTTP {reply.status_code}"
                        f"{' (busy)' if reply.status_code in RETRY_STATUSES else ''}; "
                        "run `ask sync` again later.")
    headers = reply.headers
    return Response(url, reply.content, headers.get("Content-Type", ""),
                    headers.get("ETag", ""), headers.get("Last-Modified", ""))


def _where(url: str) -> str:
    """The URL without its query, for messages (the query can be long and says little)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    if "name or service" in text.lower() or "nodename" in text.lower():
        return "unknown host; offline?"
    return text[:120]

"""What every feed is: pages of records fetched since a cursor, each parsed to ``Paper``s.

A feed (:mod:`rag.feeds.hf`, :mod:`rag.feeds.arxiv_rss`, :mod:`rag.feeds.oai_pmh`)
is a name, the key of its cursor, and ``pages(cursor, client)``: the pages it has
not synced yet, fetched one at a time. A :class:`Page` carries its parsed papers,
the raw bytes (saved under the data dir for provenance) and the cursor the feed has
once this page and every page before it are committed (``None``: no change yet, as
for the first pages of an OAI-PMH resumption chain). The sync writes that cursor
only after the index holds the page's papers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from rag.feeds.client import Client
from rag.types import Paper


@dataclass
class Page:
    """One fetched page: its papers, what was skipped, and its provenance."""

    feed: str  # the feed's name: "hf-daily", "arxiv cs.CL"
    label: str  # what the page is, for messages: "hf-daily 2025-08-01"
    papers: list[Paper] = field(default_factory=list)
    records: int = 0  # records on the page (papers + skipped)
    skipped: list[str] = field(default_factory=list)  # "hf-daily 2025-08-01: 2508.1: reason"
    raw: bytes = b""  # the body as served ("" for a 304)
    raw_name: str = ""  # its file name under <data dir>/feeds/raw/ ("" : not saved)
    cursor: dict | None = None  # the feed's cursor once this page is committed
    not_modified: bool = False  # the server said nothing changed (304, or the same body)


@dataclass
class Failure:
    """A page that could not be used: it stays unsynced (the cursor does not pass it)."""

    feed: str
    message: str  # one line


class Feed(Protocol):
    """A source of papers that fetches (see the module's docstring)."""

    name: str  # shown in summaries and the Library tab: "hf-daily", "arxiv cs.CL"
    cursor_key: str  # the cursor's file name under <data dir>/feeds/cursors/

    def pages(self, cursor: dict, client: Client) -> Iterator[Page | Failure]:
        """The pages not yet synced, in order; a Failure for a page that is unusable
        (a :class:`rag.errors.FeedUnreachableError` propagates: the sync stops)."""
        ...


def listing_name(feed: str, day: str) -> str:
    """The source name a paper's listing carries: ``"hf-daily 2025-08-01"``."""
    return f"{feed} {day}"


def clean_text(value) -> str:
    """A feed's string with its whitespace folded (titles and abstracts carry hard line
    breaks); anything that is not a string is ""."""
    if not isinstance(value, str):
        return ""
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from JSON
    return " ".join(value.split())


def looks_like_html(body: bytes, content_type: str) -> bool:
    """An error page where data was expected (a proxy's or a CDN's "502 Bad Gateway")."""
    head = body.lstrip()[:200].lower()
    return "text/html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))

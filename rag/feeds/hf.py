"""The Hugging Face daily papers listing, through its JSON API: one request per day.

``GET <hf_papers_url>?date=2025-08-01`` answers a JSON list, one entry per paper of
that day's listing::

    [{"paper": {"id": "2508.01234", "title": "...", "summary": "...",
                "authors": [{"name": "Ada Lovelace"}, ...], "publishedAt": "...",
                "upvotes": 12}, "title": "...", "numComments": 3, ...}, ...]

The paper's ``id`` is its arXiv id, so a paper met here and in the arXiv feeds is one
paper. Its listing is ``("2025-08-01", "hf-daily 2025-08-01")``.

The cursor: ``days`` (synced days that are final), ``open`` (recent days, which can
still grow: fetched again next time, conditionally: their ETag / Last-Modified and a
hash of the body) and ``from`` (the first day ever synced, so a day that failed is
retried by a later plain ``ask sync``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator

from rag.errors import FeedError, FeedUnreachableError
from rag.feeds.client import Client
from rag.feeds.source import Failure, Page, clean_text, listing_name, looks_like_html
from rag.identity import normalize_arxiv_id
from rag.settings import Settings
from rag.types import Listing, Paper

NAME = "hf-daily"
OPEN_DAYS = 1  # days before today whose listing can still grow (time zones, late additions)
# Entries asked for per day (the API's default is fewer). A day rarely lists more than ~60
# papers; a full answer is reported, since the rest of that day would be missing.
LIMIT = 100


class HFDaily:
    """The daily papers listing, one page per day from ``since`` to ``until``."""

    name = NAME
    cursor_key = "hf-daily"

    def __init__(self, settings: Settings, today: dt.date, since: dt.date | None = None,
                 until: dt.date | None = None) -> None:
        self.settings, self.today, self.since = settings, today, since
        self.until = min(until or today, today)

    def days(self, cursor: dict) -> list[dt.date]:
        """The days to fetch: the range, less the days already synced for good."""
        first = cursor.get("from")
        start = self.since or (dt.date.fromisoformat(first) if first else
                               self.today - dt.timedelta(days=self.settings.sync_days - 1))
        done = set(cursor.get("days", ()))
        span = (self.until - start).days + 1
        days = (start + dt.timedelta(days=n) for n in range(max(span, 0)))
        return [d for d in days if d.isoformat() not in done]

    def pages(self, cursor: dict, client: Client) -> Iterator[Page | Failure]:
        state = {"from": cursor.get("from"), "days": list(cursor.get("days", ())),
                 "open": dict(cursor.get("open", {}))}
        for day in self.days(cursor):
            label = listing_name(NAME, day.isoformat())
            try:
                page = self._fetch(day, label, state, client)
            except FeedUnreachableError:
                raise  # no use asking for the other days: the sync stops
            except FeedError as exc:
                yield Failure(NAME, f"{label}: {exc}")
                continue
            state = _advance(state, day, page, self.today)
            page.cursor = {**state, "days": sorted(state["days"])}
            yield page

    def _fetch(self, day: dt.date, label: str, state: dict, client: Client) -> Page:
        known = state["open"].get(day.isoformat(), {})
        reply = client.get(self.settings.hf_papers_url,
                           {"date": day.isoformat(), "limit": LIMIT}, validators=known)
        digest = hashlib.sha1(reply.body).hexdigest()
        if reply.not_modified or (known.get("sha") == digest):
            return Page(NAME, label, not_modified=True, cursor=None)
        if looks_like_html(reply.body, reply.content_type):
            raise FeedError("the server sent an HTML page where JSON was expected (an error "
                            "page?); this day stays unsynced, run `ask sync` again later.")
        page = parse_day(reply.body, day.isoformat(), label)
        page.raw, page.raw_name = reply.body, f"hf-daily/{day.isoformat()}.json"
        page.cursor = {"validators": reply.validators(), "sha": digest}
        return page


def _advance(state: dict, day: dt.date, page: Page, today: dt.date) -> dict:
    """The cursor once this day is committed: a final day joins ``days``; a recent one
    is kept in ``open`` with what a conditional request needs."""
    iso = day.isoformat()
    first = state["from"]
    state = {**state, "from": min(first, iso) if first else iso, "open": dict(state["open"])}
    if day < today - dt.timedelta(days=OPEN_DAYS):
        state["days"] = [*state["days"], iso]
        state["open"].pop(iso, None)
    elif page.cursor is not None:  # fetched (not a 304): remember how to ask again
        state["open"][iso] = {**page.cursor["validators"], "sha": page.cursor["sha"]}
    return state


def parse_day(body: bytes, day: str, label: str) -> Page:
    """A day's JSON list as a Page (FeedError when it is not a JSON list)."""
    try:
        entries = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(
            exc, json.JSONDecodeError) else ""
        raise FeedError(f"the answer is not valid JSON{where} (truncated?); this day stays "
                        "unsynced, run `ask sync` again later.") from exc
    if not isinstance(entries, list):
        raise FeedError("the answer is not a list of papers; check ABSTRACTA_HF_PAPERS_URL.")
    page = Page(NAME, label, records=len(entries))
    if len(entries) >= LIMIT:
        page.skipped.append(f"{label}: the answer holds {len(entries)} papers, the most asked "
                            "for; later papers of that day may be missing")
    for n, entry in enumerate(entries, start=1):
        paper = _paper(entry, day, label)
        if isinstance(paper, str):
            page.skipped.append(f"{label}: entry {n}: {paper}; skipped")
        else:
            page.papers.append(paper)
    return page


def _paper(entry, day: str, label: str) -> Paper | str:
    """One entry as a Paper, or why it cannot be one."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    found = entry.get("paper")
    inner: dict = found if isinstance(found, dict) else {}
    title = clean_text(inner.get("title") or entry.get("title"))
    abstract = clean_text(inner.get("summary") or entry.get("summary"))
    raw_id = inner.get("id")
    arxiv_id = normalize_arxiv_id(raw_id) if isinstance(raw_id, str) else None
    if not title or not abstract:
        what = f"{arxiv_id or 'a paper'} '{title[:60]}'" if title else (arxiv_id or "a paper")
        return f"{what} has no {'title' if not title else 'abstract'}"
    authors = inner.get("authors")
    names = [clean_text(a.get("name")) for a in (authors if isinstance(authors, list) else [])
             if isinstance(a, dict)]
    return Paper(title=title, abstract=abstract, listings=(Listing(day, label),),
                 arxiv_id=arxiv_id, authors=", ".join(n for n in names if n),
                 where=label + (f" {arxiv_id}" if arxiv_id else ""))

"""A sync: each feed's new pages fetched, their papers ingested, then its cursor moved.

For each feed, in order: the pages it has not synced (:meth:`Feed.pages`), each saved
as served under ``<data dir>/feeds/raw/``; every ``Settings.sync_commit_records``
records (and at the end) the papers go through the ordinary ingest
(:func:`rag.ingest.ingest_papers`: merge by arXiv id, dedupe against the index, embed,
write) and only then is the feed's cursor written. A sync killed anywhere leaves the
cursor before the uncommitted pages: the next sync fetches them again and the ingest,
idempotent, ends with the index an uninterrupted sync builds. A page the server spoils
(an HTML error page, truncated JSON or XML) is left unsynced and reported; an
unreachable server stops the sync. Nothing already indexed is ever removed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.errors import FeedUnreachableError
from rag.feeds.client import Client
from rag.feeds.cursor import load_cursor, load_status, save_cursor, save_raw, save_status
from rag.feeds.source import Failure, Feed, Page
from rag.identity import paper_id
from rag.ingest import IngestReport, ingest_papers
from rag.settings import Settings


@dataclass
class SyncReport:
    """What a sync did: per feed and in total."""

    fetched: int = 0  # records on pages not synced before
    pages: int = 0  # pages fetched with something new
    unchanged_pages: int = 0  # pages the server said had not changed
    failures: list[str] = field(default_factory=list)  # one line each
    unreachable: bool = False  # a server could not be reached: the sync stopped
    ingest: IngestReport = field(default_factory=IngestReport)
    new: list = field(default_factory=list)  # StoredPaper: the papers this sync added
    feeds: dict[str, dict] = field(default_factory=dict)  # name -> {"fetched", "pages"}

    def summary(self) -> str:
        r = self.ingest
        text = (f"{self.fetched} fetched ({self.pages} page{'s' if self.pages != 1 else ''}"
                f" new, {self.unchanged_pages} unchanged), {r.added} added, {r.updated} "
                f"updated, {r.unchanged} already indexed, {len(r.skipped)} skipped")
        if self.failures:
            text += f"; {len(self.failures)} page(s) or feed(s) failed"
        return text


Ingest = Callable[[list], IngestReport]


def run_sync(feeds: list[Feed], settings: Settings, ingest: Ingest, store) -> SyncReport:
    """Fetch every feed's new pages and ingest them (``ingest``: papers -> report, the
    caller's :func:`ingest_papers` with its store, embedder and progress)."""
    report = SyncReport()
    with Client(settings) as client:
        for feed in feeds:
            _sync_feed(feed, settings, client, ingest, store, report)
            if report.unreachable:
                break
    return report


def _sync_feed(feed: Feed, settings: Settings, client: Client, ingest: Ingest, store,
               report: SyncReport) -> None:
    report.feeds.setdefault(feed.name, {"fetched": 0, "pages": 0, "added": 0})
    pending: list[Page] = []
    try:
        for item in feed.pages(load_cursor(settings, feed.cursor_key), client):
            if isinstance(item, Failure):
                report.failures.append(item.message)
                continue
            if item.not_modified:
                report.unchanged_pages += 1
            pending.append(item)
            if sum(p.records for p in pending) >= settings.sync_commit_records:
                _commit(feed, pending, settings, ingest, store, report)
                pending = []
    except FeedUnreachableError as exc:
        report.failures.append(f"{feed.name}: {exc}")
        report.unreachable = True
    _commit(feed, pending, settings, ingest, store, report)
    _note_status(feed, settings, report)


def _commit(feed: Feed, pages: list[Page], settings: Settings, ingest: Ingest, store,
            report: SyncReport) -> None:
    """The pages' papers into the index, then the feed's cursor past them."""
    if not pages:
        return
    stats = report.feeds[feed.name]
    papers = [p for page in pages for p in page.papers]
    for page in pages:
        save_raw(settings, page.raw_name, page.raw)
        if not page.not_modified:
            report.pages += 1
            stats["pages"] += 1
        report.fetched += page.records
        stats["fetched"] += page.records
        report.ingest.skipped.extend(page.skipped)
    if papers:
        before = _indexed(store(), papers)
        done = ingest(papers)
        _add_counts(report.ingest, done)
        added = _added(store(), papers, before)
        report.new.extend(added)
        stats["added"] += len(added)
    cursor = next((p.cursor for p in reversed(pages) if p.cursor is not None), None)
    if cursor is not None:
        save_cursor(settings, feed.cursor_key, cursor)


def _ids(papers) -> list[str]:
    return sorted({paper_id(p.title, p.arxiv_id, p.record_id) for p in papers})


def _indexed(store, papers) -> set[str]:
    return set(store.get_papers(_ids(papers))) if store.has_papers() else set()


def _added(store, papers, before: set[str]) -> list:
    fresh = [pid for pid in _ids(papers) if pid not in before]
    found = store.get_papers(fresh)
    return [found[pid] for pid in fresh if pid in found]


def _add_counts(total: IngestReport, part: IngestReport) -> None:
    for name in ("records", "added", "updated", "unchanged", "chunks"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.skipped.extend(part.skipped)
    total.merges.extend(part.merges)
    total.capped.extend(part.capped)
    total.max_chunks = part.max_chunks or total.max_chunks


def _note_status(feed: Feed, settings: Settings, report: SyncReport) -> None:
    """The feed's last sync, for the Library tab and `ask new` (written after commit)."""
    stats = report.feeds[feed.name]
    errors = [f for f in report.failures if f.startswith(feed.name)]
    status = load_status(settings)
    status[feed.name] = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                         "fetched": stats["fetched"], "added": stats["added"],
                         "pages": stats["pages"], "error": errors[-1] if errors else ""}
    save_status(settings, status)


def sync_ingest(settings: Settings, store, embedder, progress=None,
                on_lock_wait=None) -> Ingest:
    """The ingest a sync commits through: :func:`ingest_papers` into this store."""
    def ingest(papers: list) -> IngestReport:
        return ingest_papers(papers, settings, store, embedder, progress=progress,
                             on_lock_wait=on_lock_wait, command="ask sync")
    return ingest

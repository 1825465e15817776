"""`ask new`: the papers the feeds listed, newest first, and each feed's last sync.

A feed's listing names its day (``"hf-daily 2025-08-01"``, ``"arxiv cs.CL 2025-08-01"``,
:func:`rag.feeds.source.listing_name`), so the index itself says which papers came
from a sync and when, whatever else lists them: no second record to keep in step.
The papers are selected through the index's facets (:meth:`Store.filter_papers`), never
by reading every paper record.
"""

from __future__ import annotations

from rag.feeds.cursor import load_status
from rag.settings import Settings
from rag.types import StoredPaper

FEED_PREFIXES = ("hf-daily ", "arxiv ")


def feed_day(source: str) -> str:
    """'arxiv cs.CL 2025-08-01' -> '2025-08-01'; '' for a source that is not a feed's."""
    if not source.startswith(FEED_PREFIXES):
        return ""
    day = source.rpartition(" ")[2]
    return day if len(day) == 10 and day[4] == "-" else ""


def newest_day(paper: StoredPaper) -> str:
    """The latest day a feed listed the paper on."""
    return max((feed_day(s) for s in paper.sources), default="")


def new_papers(store, since: str | None = None, categories: tuple[str, ...] = (),
               limit: int | None = None) -> list[StoredPaper]:
    """Papers a feed listed (on/after ``since``, ISO), in any of ``categories`` (an
    archive such as ``cs`` matches ``cs.CL``), newest listing first."""
    if not store.has_papers():
        return []

    def from_feed(sources: tuple[str, ...]) -> bool:
        return any(feed_day(s) >= (since or "0") for s in sources if feed_day(s))

    ids = store.filter_papers(sources=from_feed)
    papers = list(store.get_papers(ids).values())
    if categories:
        papers = [p for p in papers if _in_categories(p.categories, categories)]
    papers.sort(key=lambda p: (newest_day(p), p.paper_id), reverse=True)
    return papers[:limit] if limit else papers


def _in_categories(held: str, wanted: tuple[str, ...]) -> bool:
    mine = held.split()
    return any(c == w or c.startswith(w + ".") for c in mine for w in wanted)


def sync_status(settings: Settings) -> dict[str, dict]:
    """Each feed's last sync (``{"at", "fetched", "added", "pages", "error"}``), by name."""
    return dict(sorted(load_status(settings).items()))

"""Date and source filters: what a user typed, and the papers they keep.

A filter never reads every paper record: the index's facets (each stored ``dates`` /
``sources`` value and its paper count, cached per generation by :mod:`rag.store.cache`)
are asked about each distinct value, and Chroma selects the papers with those values.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.errors import QuestionError


@dataclass(frozen=True)
class Filters:
    """Keep papers listed in a date range and/or from some sources.

    Dates are ISO (``2024-08-13``) or yearless (``--08-13``, from listing pages
    that give no year). A bound compares on month-day when either side has no year.
    """

    since: str | None = None
    until: str | None = None
    sources: tuple[str, ...] = ()

    def active(self) -> bool:
        return bool(self.since or self.until or self.sources)

    def keeps_sources(self, sources: tuple[str, ...]) -> bool:
        """Whether a paper listed in these files passes (any of them matches one wanted)."""
        return not self.sources or any(_source_matches(s, want)
                                       for s in sources for want in self.sources)

    def keeps_dates(self, dates: tuple[str, ...]) -> bool:
        """Whether a paper listed on these dates passes (any of them is in the range)."""
        if self.since or self.until:
            return any(_in_range(d, self.since, self.until) for d in dates)
        return True


def _source_matches(source: str, wanted: str) -> bool:
    return source == wanted or wanted.lower() in source.lower()


def _in_range(date: str, since: str | None, until: str | None) -> bool:
    def cmp_key(a: str, b: str) -> tuple[str, str]:
        if a.startswith("--") or b.startswith("--"):
            return a[-5:], b[-5:]
        return a, b

    if since:
        a, b = cmp_key(date, since)
        if a < b:
            return False
    if until:
        a, b = cmp_key(date, until)
        if a > b:
            return False
    return True


def allowed_papers(store, facets, filters: Filters | None) -> list[str] | None:
    """Ids of the papers the filters keep (None: no filter), from this generation's
    ``facets`` (:class:`rag.store.cache.Facets`). A source name that matches no indexed
    source is an error, not an empty result."""

    if filters is None or not filters.active():
        return None
    if filters.sources:
        known = facets.source_counts()
        unknown = [w for w in filters.sources if not any(_source_matches(s, w) for s in known)]
        if unknown:
            raise QuestionError(
                f"No indexed source matches {', '.join(repr(u) for u in unknown)}; "
                "`ask stats` lists the sources.")
    # The facets this searcher holds: the store would otherwise ask the cache for the
    # current generation again, mid-question.
    return store.filter_papers(filters.keeps_dates if filters.since or filters.until else None,
                               filters.keeps_sources if filters.sources else None,
                               facets=facets)

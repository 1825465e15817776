"""Date, source, category and author filters: what a user typed, and the papers they keep.

A filter never reads every paper record: the index's facets (each stored ``dates`` /
``sources`` value and its paper count, cached per generation by :mod:`rag.store.cache`)
are asked about each distinct value, and Chroma selects the papers with those values.
Categories and authors come from the facets' postings (category or author-name key ->
papers, :mod:`rag.store.postings`, :mod:`rag.authors`): no Chroma query at all; only an
author name of three or more words reads the authors of the few papers under its keys,
to check their order.

Within one kind, any wanted value keeps a paper (``--category cs.CL --category cs.LG``:
either); kinds combine (``--category cs.CL --author Hinton``: both). A category or author
that no indexed paper has is an error naming it (as an unknown source is), never an
unfiltered answer; so are a category and an author that each match papers but no paper
together. (Dates alone keep their old way: a range with no paper in it keeps nothing.)
"""

from __future__ import annotations

from dataclasses import dataclass

from rag import authors as names
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
    categories: tuple[str, ...] = ()  # "cs.CL" (that category) or "cs" (any cs.*)
    authors: tuple[str, ...] = ()  # names as typed: "Hinton", "G. Hinton" (see rag.authors)

    def active(self) -> bool:
        return bool(self.since or self.until or self.sources or self.categories
                    or self.authors)

    def keeps_categories(self, categories: tuple[str, ...]) -> bool:
        """Whether a paper with these arXiv categories passes (any of them matches one wanted)."""
        return not self.categories or any(category_matches(c, want) for c in categories
                                          for want in self.categories)

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


def category_matches(category: str, wanted: str) -> bool:
    """``wanted`` is the category itself (case aside: "cs.cl" is "cs.CL") or its archive,
    the part before the dot ("cs" keeps cs.CL and cs.LG; "hep-th" has no dot: itself)."""
    category, wanted = category.casefold(), wanted.strip().casefold()
    return category == wanted or category.startswith(wanted + ".")


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
    ``facets`` (:class:`rag.store.cache.Facets`). A source, category or author that no
    indexed paper has is a QuestionError naming it, not an empty or unfiltered result."""

    if filters is None or not filters.active():
        return None
    _check_known(filters, facets)
    keep = None  # the ids the postings keep (None: no category or author filter)
    if filters.categories:
        keep = set().union(*(facets.category_papers(c) for c in filters.categories))
    if filters.authors:
        by_author = _author_papers(store, facets, filters.authors)
        keep = by_author if keep is None else keep & by_author
    if filters.since or filters.until or filters.sources:
        # The facets this searcher holds: the store would otherwise ask the cache for the
        # current generation again, mid-question.
        ids = store.filter_papers(filters.keeps_dates if filters.since or filters.until
                                  else None,
                                  filters.keeps_sources if filters.sources else None,
                                  facets=facets)
        ids = ids if keep is None else [p for p in ids if p in keep]
    else:
        ids = sorted(keep or ())
    if not ids:
        # Say which filters matched nothing, rather than "no paper matched the question"
        # (each source, category and author matched something on its own: checked above).
        together = " together" if sum(map(bool, (
            filters.since or filters.until, filters.sources, filters.categories,
            filters.authors))) > 1 else ""
        raise QuestionError(f"No indexed paper matches these filters{together}: "
                            f"{describe(filters)}; `ask stats` lists the listing dates, "
                            "sources and categories.")
    return ids


def describe(filters: Filters) -> str:
    """The filters as a user typed them: "category 'hep-th', author 'Wei Li'"."""
    parts = [f"listed since {filters.since}" if filters.since else "",
             f"listed until {filters.until}" if filters.until else "",
             *(f"source {s!r}" for s in filters.sources),
             *(f"category {c!r}" for c in filters.categories),
             *(f"author {a!r}" for a in filters.authors)]
    return ", ".join(p for p in parts if p)


def _check_known(filters: Filters, facets) -> None:
    """Each wanted source and category matches something indexed (else QuestionError)."""
    if filters.sources:
        known = facets.source_counts()
        unknown = [w for w in filters.sources if not any(_source_matches(s, w) for s in known)]
        if unknown:
            raise QuestionError(
                f"No indexed source matches {', '.join(repr(u) for u in unknown)}; "
                "`ask stats` lists the sources.")
    if filters.categories:
        unknown = [w for w in filters.categories if not facets.category_papers(w)]
        if unknown:
            raise QuestionError(
                f"No indexed paper has category {', '.join(repr(u) for u in unknown)}; "
                + ("`ask stats` lists the categories." if facets.categories else
                   "no indexed paper has categories at all (arXiv metadata JSON Lines "
                   "and CSV files with a categories column carry them)."))


def _author_papers(store, facets, wanted: tuple[str, ...]) -> set[str]:
    """Ids of the papers with an author matching any of the wanted names (QuestionError
    naming those no paper has). A name of one or two words is answered by the author
    facet's keys alone (a binary search each); a longer one ("Geoffrey E. Hinton") also
    reads the authors of the few papers under all its keys, to check the order."""
    found: set[str] = set()
    missing = []
    for text in wanted:
        try:
            want = names.wanted(text)
        except ValueError as exc:
            raise QuestionError(str(exc)) from exc
        ids = set.intersection(*[set().union(*(facets.author_papers(k) for k in keys))
                                 for keys in names.lookups(want)])
        if len(want) > 2 and ids:
            records = store.get_papers(sorted(ids))
            ids = {p for p, paper in records.items() if names.paper_matches(want, paper.authors)}
        if not ids:
            missing.append(text)
        found |= ids
    if missing:
        raise QuestionError(
            f"No indexed paper has an author named {', '.join(repr(m) for m in missing)}; "
            "a name is whole words, the surname last: \"Hinton\", \"G. Hinton\".")
    return found

"""Identity within a batch: records grouped into one paper each, their listings pooled."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from rag.identity import abstract_key, paper_id, title_key
from rag.ingest.report import IngestReport
from rag.types import Paper, StoredPaper


def content_hash(title: str, abstract: str) -> str:
    return hashlib.sha1(f"{title}\n{abstract}".encode()).hexdigest()


def own_id(p: Paper) -> str | None:
    """The record's own id (arXiv id or the file's), None for a record known by title only."""
    pid = paper_id(p.title, p.arxiv_id, p.record_id)
    return None if pid.startswith("t:") else pid


class Prior(NamedTuple):
    """A paper an earlier batch of this run wrote or checked (see :class:`Seen`)."""

    added: bool  # the run added it (it was not in the index before the run)
    where: str  # "file:line" of its first record in this run ("" when unknown)
    abstract_keys: frozenset[str]  # abstracts of its records other than the stored one


PriorOf = Callable[[str], "Prior | None"]


@dataclass
class Group:
    """The records that are one paper, while merging."""

    pid: str
    title_key: str
    abstract_keys: set[str]
    sources: set[str]
    known: bool = False  # in the index before this run
    first_where: str | None = None  # "file:line" of the first record of this run
    records: int = 0  # records of this batch merged into it
    last_abstract_key: str = ""  # of its latest record: the merged paper's abstract


class _Groups:
    """Papers by id and by title key, for one batch: the index's papers of the batch's
    titles, then the batch's own records, in the order :func:`merge` gives them."""

    def __init__(self) -> None:
        self.by_id: dict[str, Group] = {}
        self.by_title: dict[str, list[Group]] = {}

    def add(self, pid: str, key: str, akeys: set[str], sources, known: bool = False,
            first_where: str | None = None) -> Group:
        group = Group(pid, key, set(akeys), set(sources), known, first_where)
        self.by_id[pid] = group
        self.by_title.setdefault(key, []).append(group)
        return group

    def assign(self, p: Paper, prior: PriorOf) -> Group:
        """The paper this record belongs to (a new one when none matches)."""
        key, akey = title_key(p.title), abstract_key(p.abstract)
        sources = {lst.source for lst in p.listings if lst.source}
        same_title = self.by_title.get(key, [])
        match = next((g for g in same_title if akey in g.abstract_keys), None)
        own = own_id(p)
        if own is not None:
            group = self.by_id.get(own)
            if group is None and match is not None and match.known and match.pid.startswith("t:"):
                group = match  # indexed by its title before: it keeps that id
            if group is None:
                before = prior(own)
                group = self.add(own, key, {akey}, sources,
                                 first_where=before.where if before else None)
        elif match is not None:
            group = match
        else:
            edited = next((g for g in same_title if g.known and g.sources & sources), None)
            if edited is not None:
                group = edited  # the same file brings a new abstract for the paper
            else:
                plain = f"t:{key}"
                pid = plain if plain not in self.by_id else f"{plain}-{akey[:8]}"
                group = self.add(pid, key, {akey}, sources)
        group.abstract_keys.add(akey)
        group.last_abstract_key = akey  # records are assigned in _combine's order
        group.sources |= sources
        return group


def merge(papers: list[Paper], known: dict[str, list[StoredPaper]],
          report: IngestReport | None = None, prior: PriorOf | None = None,
          ) -> dict[str, StoredPaper]:
    """Group records into one StoredPaper per paper id; later abstracts replace earlier ones.

    Records are one paper when they share an arXiv id or a file's own id (``csv:17``),
    or when they share a title *and* an abstract (normalized: whitespace, case, TeX),
    so a listing page and an arXiv snapshot of one paper meet. A record without an id
    whose title is taken by another paper with a different abstract is another paper
    ("Summary", "Erratum"): it gets ``t:<title key>-<abstract key>``. The exception is
    an edit: a record from the same file as an indexed paper of that title replaces its
    abstract. ``known``: title key -> the indexed papers with that title. ``prior``:
    what earlier batches of this run did with a paper id. Every record merged into
    another is listed in ``report.merges``.
    """
    return merge_groups(papers, known, report, prior)[0]


def merge_groups(papers: list[Paper], known: dict[str, list[StoredPaper]],
                 report: IngestReport | None, prior: PriorOf | None,
                 ) -> tuple[dict[str, StoredPaper], dict[str, Group]]:
    """:func:`merge`, and the groups (records, abstract keys, first record) by id."""
    prior_of: PriorOf = prior or (lambda pid: None)
    groups = _Groups()
    for key, stored in known.items():
        for sp in stored:
            before = prior_of(sp.paper_id)
            groups.add(sp.paper_id, key, {abstract_key(sp.abstract)} | set(
                before.abstract_keys if before else ()), sp.sources,
                known=not (before and before.added),
                first_where=before.where if before else None)
    # Records with an id first: a title-only record then joins the paper it matches.
    assigned = [(p, groups.assign(p, prior_of))
                for p in sorted(papers, key=lambda p: own_id(p) is None)]
    return _combine(assigned, report), groups.by_id


def _combine(assigned: list[tuple[Paper, Group]],
             report: IngestReport | None) -> dict[str, StoredPaper]:
    """One StoredPaper per group: listings pooled, the last abstract, the first title."""
    merged: dict[str, StoredPaper] = {}
    for p, group in assigned:
        pid = group.pid
        group.records += 1
        dates = tuple(lst.date for lst in p.listings if lst.date)
        sources = tuple(lst.source for lst in p.listings if lst.source)
        old = merged.get(pid)
        if old is None:
            merged[pid] = StoredPaper(pid, p.title, p.abstract, tuple(sorted(set(dates))),
                                      tuple(sorted(set(sources))), p.authors, p.url,
                                      p.categories)
        else:
            merged[pid] = StoredPaper(
                pid, old.title, p.abstract,
                tuple(sorted(set(old.dates) | set(dates))),
                tuple(sorted(set(old.sources) | set(sources))),
                p.authors or old.authors, p.url or old.url, p.categories or old.categories,
            )
        if group.first_where is None:  # the first record of this paper in this run
            group.first_where = p.where
        elif report is not None:
            report.merges.append(f"{p.where or p.title} into {group.first_where or pid}: "
                                 f"{p.title}")
    return merged


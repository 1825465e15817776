"""One batch against the index: what to embed, what only gains listings, what is unchanged."""

from __future__ import annotations

from rag.identity import title_key
from rag.ingest.merge import content_hash, merge_groups
from rag.ingest.report import IngestReport, Run
from rag.ingest.seen import Seen
from rag.ingest.write import Item
from rag.store import ChunkRecord, Store, metadata_for_paper
from rag.types import Paper, StoredPaper


def dedupe_batch(papers: list[Paper], store: Store, report: IngestReport, seen: Seen,
                 run: Run) -> list[Item]:
    """Merge one batch against the index; update the listings of unchanged papers (their
    records counted done); return the papers to embed."""
    keys = sorted({title_key(p.title) for p in papers})
    known_ids = store.ids_by_title_key(keys)
    stored = store.get_papers(sorted({pid for ids in known_ids.values() for pid in ids}))
    merged, groups = merge_groups(
        papers, {key: [stored[pid] for pid in ids if pid in stored]
                 for key, ids in known_ids.items()}, report, seen.get)
    existing = store.paper_records(list(merged))
    # A paper whose record survived but a chunk did not (damage) is written again, so
    # re-ingesting its file restores it: the record alone would call it unchanged.
    lacking = store.incomplete(existing)
    items, meta_ids, meta_updates = [], [], []
    for pid, paper in merged.items():
        old = existing.get(pid)
        paper = _with_stored(paper, old)
        digest = content_hash(paper.title, paper.abstract)
        group, before = groups[pid], seen.outcome_of(pid)
        if (old is None or old.paper is None or old.content_hash != digest
                or pid in lacking):
            outcome = Seen.ADDED if old is None else Seen.UPDATED
            items.append(Item(paper, digest, group.records, before is not None))
        else:
            new_meta = metadata_for_paper(paper, digest, title_key(paper.title))
            outcome = Seen.UNCHANGED
            stored_meta = old.paper_metadata()
            if any(new_meta.get(k, "") != stored_meta.get(k, "")
                   for k in ("dates", "sources", "authors", "url", "categories")):
                meta_ids.append(pid)
                meta_updates.append(new_meta)
                outcome = Seen.UPDATED
            run.done += group.records
        outcome = _count(report, before, outcome)
        seen.put(pid, outcome, group.first_where or "",
                 group.abstract_keys - {group.last_abstract_key})
    if meta_ids:
        store.update_paper_meta(meta_ids, meta_updates)
    return items


def _with_stored(paper: StoredPaper, old: ChunkRecord | None) -> StoredPaper:
    """The merged paper with what the index holds for it: its title, every listing."""
    if old is None or old.paper is None:
        return paper
    was = old.paper
    return StoredPaper(
        paper.paper_id, was.title or paper.title, paper.abstract,
        tuple(sorted(set(paper.dates) | set(was.dates))),
        tuple(sorted(set(paper.sources) | set(was.sources))),
        paper.authors or was.authors, paper.url or was.url,
        paper.categories or was.categories,
    )


def _count(report: IngestReport, before: int | None, outcome: int) -> int:
    """Count a paper once per run: a paper an earlier batch added stays added, one it
    updated stays updated; one it left unchanged is updated now if this batch changed it."""
    names = {Seen.ADDED: "added", Seen.UPDATED: "updated", Seen.UNCHANGED: "unchanged"}
    if before is not None:
        setattr(report, names[before], getattr(report, names[before]) - 1)
        if before != Seen.UNCHANGED:
            outcome = before
    setattr(report, names[outcome], getattr(report, names[outcome]) + 1)
    return outcome


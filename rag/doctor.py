"""`ask doctor`: check the index and say in plain words what is wrong; ``--repair`` fixes it.

Checks, in order:

1. every chunk's metadata has what retrieval needs (paper id, chunk number, text, title);
2. every paper with chunks has its chunk #0 paper record (the commit marker an ingest
   writes last): without it the paper was half-written or lost its record, and is
   invisible (each such paper is named: id, title, the files to ingest again); and every
   paper with a record has every chunk the record counts (a lost chunk leaves part of
   the abstract unsearchable);
3. every chunk's vector can be read back (two processes writing one embedded index at
   once left chunks that fail with "Error finding id" / "Error getting embedding");
4. the BM25 cache of the current generation holds exactly the collection's chunks;
5. the recorded embedding model is the configured one;
6. a sample of papers is found by an exact search with their own vector;
7. an ingest of the bundled sample corpus that was started (a first run) has finished.

The repair rebuilds each broken paper from what the index itself holds (the paper
record on chunk #0: title, abstract, dates, sources), re-chunks and re-embeds it,
then rewrites its chunks (old ones deleted first, the record last), rebuilds the BM25
cache and saves the vector index whole. Papers whose record is missing cannot be
rebuilt (their first chunk is gone): their stray chunks are removed, the papers are
listed in ``lost-papers.tsv`` in the data dir and the files to ingest again are named
(an ingest of them then restores the papers, and the chunks a surviving record counts).
An unfinished sample corpus is finished. It holds the write lock, like an ingest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rag.store import ChunkRecord, Store

SAMPLE = 200  # papers checked by their own vector (a query each, batched)
NAMED = 10  # lost papers named on the terminal (all of them go to LOST_FILE)
LOST_FILE = "lost-papers.tsv"


@dataclass
class Checkup:
    papers: int = 0
    chunks: int = 0
    missing_meta: list[str] = field(default_factory=list)  # chunk ids
    no_record: dict[str, set] = field(default_factory=dict)  # paper id -> its sources
    lost_titles: dict[str, str] = field(default_factory=dict)  # no_record's titles
    incomplete: list[str] = field(default_factory=list)  # paper ids missing a chunk
    unreadable: list[str] = field(default_factory=list)  # chunk ids
    lexical: str = ""  # what is wrong with the BM25 cache, or ""
    model: str = ""  # the model mismatch, or ""
    sampled: int = 0
    not_found: list[str] = field(default_factory=list)  # paper ids
    sample_corpus: str = ""  # how far an unfinished bundled corpus got, or ""
    repaired: list[str] = field(default_factory=list)  # what --repair did

    @property
    def broken_papers(self) -> set[str]:
        """Papers with a record whose chunks need rewriting."""
        ids = {cid.rsplit("#", 1)[0] for cid in self.missing_meta + self.unreadable}
        return (ids | set(self.not_found) | set(self.incomplete)) - set(self.no_record)

    @property
    def clean(self) -> bool:
        return not (self.missing_meta or self.no_record or self.unreadable or self.lexical
                    or self.model or self.not_found or self.sample_corpus or self.incomplete)

    def lines(self) -> list[str]:
        out = [f"Checked {self.papers} papers in {self.chunks} chunks."]
        if self.missing_meta:
            out.append(f"- {len(self.missing_meta)} chunks lack metadata retrieval needs "
                       f"(e.g. {self.missing_meta[0]}).")
        if self.no_record:
            out.append(f"- {_n(len(self.no_record), 'paper')} without a paper record (half-"
                       "written, or the record was lost): not searchable. " + self.named_lost())
        if self.incomplete:
            out.append(f"- {_n(len(self.incomplete), 'paper')} missing some of their chunks "
                       "(part of the abstract is not searchable); the repair re-embeds them "
                       "from their records.")
        if self.unreadable:
            out.append(f"- {_n(len(self.unreadable), 'chunk')} with vectors that cannot be read "
                       "back (damaged vector index, e.g. after two processes wrote it at once).")
        if self.lexical:
            out.append(f"- BM25 cache: {self.lexical}.")
        if self.model:
            out.append(f"- {self.model}")
        if self.not_found:
            out.append(f"- {len(self.not_found)} of {self.sampled} sampled papers are not "
                       "found by an exact search with their own vector (their vectors are "
                       "unreadable or damaged).")
        elif self.sampled:
            out.append(f"- an exact search found all {self.sampled} sampled papers by their "
                       "own vector.")
        if self.sample_corpus:
            out.append(f"- sample corpus incomplete: {self.sample_corpus}; run `ask` (or `ask "
                       "ingest --bundled`) again to finish.")
        return out

    def named_lost(self) -> str:
        """The lost papers by id and title, the first NAMED of them."""
        from rag.text import display_safe

        shown = [f"{pid} \"{display_safe(self.lost_titles.get(pid, ''), newlines=False)}\""
                 for pid in sorted(self.no_record)[:NAMED]]
        more = len(self.no_record) - len(shown)
        return "Lost: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "") + "."

    def lost_rows(self) -> list[str]:
        """One tab-separated line per lost paper: id, title, the files that listed it."""
        def cell(text: str) -> str:
            return " ".join(text.split())

        return ["paper_id\ttitle\tsources"] + [
            f"{pid}\t{cell(self.lost_titles.get(pid, ''))}\t{cell(' | '.join(sorted(srcs)))}"
            for pid, srcs in sorted(self.no_record.items())]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def check(store: Store, model: str, sample: int = SAMPLE, seed: int = 0) -> Checkup:
    """Everything :mod:`rag.doctor` checks, read-only."""
    store.refresh()
    up = Checkup()
    records, ids_all = _check_chunks(store, up)
    up.lexical = _check_lexical(store, ids_all)
    up.sample_corpus = _check_sample_corpus(store)
    recorded = store.embed_model
    if recorded and recorded != model:
        up.model = (f"The index was built with embedding model '{recorded}' but '{model}' is "
                    "configured: set ABSTRACTA_EMBEDDER back, or run `ask ingest --rebuild`.")
    bad = set(up.unreadable)
    pool = sorted(pid for pid in records if f"{pid}#0" not in bad)
    picked = random.Random(seed).sample(pool, min(sample, len(pool)))
    up.sampled = len(picked)
    up.not_found = _not_own_nearest(store, picked)
    return up


def _not_own_nearest(store: Store, picked: list[str]) -> list[str]:
    """Check 6, exact: the sampled papers whose first chunk's vector cannot be read back,
    is not a usable direction (zero, inf, nan), or is nearer another sampled paper's
    vector than its own, by a brute-force cosine search over the sample's vectors.

    Not Chroma's approximate (HNSW) search: on an undamaged 60k index it missed 4 of 200
    papers by their own vector, and approximate recall is not damage."""
    import numpy as np

    ids = [f"{p}#0" for p in picked]
    own: dict[str, np.ndarray] = {}
    for start in range(0, len(ids), 500):
        own.update(store.vectors(ids[start:start + 500]))
    have = [c for c in ids if c in own]
    bad = [c for c in ids if c not in own]
    if have:
        vecs = np.asarray([own[c] for c in have], dtype=np.float64)
        norms = np.linalg.norm(vecs, axis=1)
        usable = np.isfinite(norms) & (norms > 0)
        unit = np.where(usable[:, None], vecs / np.where(usable, norms, 1)[:, None], 0)
        sims = unit @ unit.T
        best = sims.max(axis=1)
        lost = ~usable | (np.diagonal(sims) < best - 1e-6)
        bad += [c for c, gone in zip(have, lost, strict=True) if gone]
    return sorted(c.rsplit("#", 1)[0] for c in bad)


def _check_chunks(store: Store, up: Checkup) -> tuple[set[str], list[str]]:
    """Checks 1-3: metadata, paper records, readable vectors. Returns the ids of the
    papers with a record, and every chunk id."""
    ids_all: list[str] = []
    counts: dict[str, int] = {}  # paper id -> the chunk count its record holds
    by_paper: dict[str, set] = {}
    present: dict[str, int] = {}  # paper id -> its chunks present
    for page in store.scan():
        for chunk in page:
            ids_all.append(chunk.chunk_id)
            if not chunk.complete:
                up.missing_meta.append(chunk.chunk_id)
            by_paper.setdefault(chunk.paper_id, set()).update(chunk.sources)
            present[chunk.paper_id] = present.get(chunk.paper_id, 0) + 1
            if chunk.paper is not None:
                counts[chunk.paper_id] = chunk.chunks or 0
            elif chunk.title:
                up.lost_titles.setdefault(chunk.paper_id, chunk.title)
    records = set(counts)
    up.chunks, up.papers = len(ids_all), len(records)
    up.no_record = {pid: srcs for pid, srcs in by_paper.items() if pid not in records}
    up.lost_titles = {pid: t for pid, t in up.lost_titles.items() if pid in up.no_record}
    up.incomplete = sorted(pid for pid, n in counts.items() if n and present[pid] < n)
    for start in range(0, len(ids_all), 500):
        up.unreadable += store.unreadable(ids_all[start:start + 500])
    return records, ids_all


def _check_sample_corpus(store: Store) -> str:
    """Check 7: "N of M papers" of a bundled corpus whose ingest never finished, or ""."""
    from rag.ingest import unfinished_bundled_corpus

    got = unfinished_bundled_corpus(store)
    return f"{got[0]} of {got[1]} papers" if got else ""


def _check_lexical(store: Store, ids_all: list[str]) -> str:
    """Check 4: what is wrong with the BM25 cache of the current generation, or ""."""
    from rag import lexical

    cached = lexical.load(store.lexical_folder, store.generation())
    if cached is None:
        if (store.lexical_folder / lexical.MANIFEST).exists():
            return "built for another state of the index (it catches up on the next question)"
    elif set(map(str, cached.chunk_ids)) != set(ids_all):
        return (f"holds {len(cached.chunk_ids)} chunks but the index has {len(ids_all)}"
                " under the same generation (out of step)")
    return ""


def repair(store: Store, settings, embedder, up: Checkup) -> Checkup:
    """Fix what :func:`check` found (holding the write lock); returns ``up`` with
    ``repaired`` filled in. No paper with a record is dropped.

    A damaged vector index cannot be patched in place (see :mod:`rag.store.repair`), so
    the chunks are copied into a new collection (readable vectors as they are; broken
    papers re-chunked and re-embedded from their records), which replaces the old one
    only once it is complete.
    """
    from rag.ingest import BUNDLED_CORPUS, ingest_paths, write_session

    with write_session(store, settings):
        if up.missing_meta or up.no_record or up.unreadable or up.not_found:
            _rebuild(store, settings, embedder, up)
        if up.sample_corpus:
            report = ingest_paths([BUNDLED_CORPUS], settings, store, embedder)
            up.repaired.append(f"finished the sample corpus ({report.added} papers added)")
        store.flush()
        store.bump_generation(indexed=True)
        store.lexical()
        up.repaired.append("rebuilt the BM25 cache and saved the vector index")
    return up


def _rebuild(store: Store, settings, embedder, up: Checkup) -> None:
    broken, dropped, unreadable = up.broken_papers, set(up.no_record), set(up.unreadable)

    def keep(chunk: ChunkRecord) -> bool:
        return (chunk.complete and chunk.paper_id not in broken | dropped
                and chunk.chunk_id not in unreadable)

    with store.repair_copy() as copy:
        for page in store.scan():
            copy.copy([c.chunk_id for c in page if keep(c)])
        rewritten = _reembed(store, settings, embedder, copy, sorted(broken))
    if dropped:
        files = sorted({s for srcs in up.no_record.values() for s in srcs})
        lost = settings.data_dir / LOST_FILE
        lost.write_text("\n".join(up.lost_rows()) + "\n", encoding="utf-8")
        up.repaired.append(
            f"removed the chunks of {len(dropped)} papers without a record (listed in "
            f"{lost}); ingest {', '.join(files[:5]) or 'their files'}"
            f"{' ...' if len(files) > 5 else ''} again to add them back")
    up.repaired.append(f"copied {copy.copied} chunks into a new vector index and re-embedded "
                       f"{rewritten} papers from their records")


def _reembed(store: Store, settings, embedder, copy, todo: list[str]) -> int:
    """Re-chunk and re-embed these papers from their records into the repair copy;
    returns how many were rewritten."""
    import numpy as np

    from rag.chunk import make_chunker

    chunker, rewritten = make_chunker(settings), 0
    for start in range(0, len(todo), 200):
        records = store.paper_records(todo[start:start + 200])
        chunks = [c for rec in records.values() if rec.paper for c in chunker(rec.paper)]
        if not chunks:
            continue
        copy.add(chunks, np.asarray(embedder.embed_documents([c.text for c in chunks])),
                 records)
        rewritten += len(records)
    return rewritten

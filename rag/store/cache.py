"""The per-generation cache of the index: BM25 (:mod:`rag.lexical`) and the facets.

The chunks collection carries a ``generation`` token in its metadata, renewed by every
write; a process whose cache names another generation brings it up to date. That keeps
BM25 in step in server mode too, where other machines write the same collection, and a
query process loads the cache (memory-mapped segments) instead of reading the
collection.

Bringing it up to date reads only what changed (:func:`catch_up`): every chunk carries
the number of the write batch that wrote it (:meth:`rag.store.chroma.ChromaIndex.
start_batch`), and the cache's manifest records ``low``, the first batch whose chunks
may still have changed when it was last brought up to date. The chunks of the batches
from ``low`` on are read (``where batch >= low``); those the cache lacks go into a new
segment, and the rows they replace (every older row of a paper written again) are
marked in deletion files. The result must hold exactly the collection's count, else
the cache is built from scratch (:func:`build`: the first build, another format or
another collection, a deletion no batch accounts for). Then the tiered merge policy
may merge segments (:func:`optimize`). One cache writer at a time per machine
(``<folder>.lock``); readers never wait: they read the manifest they find.

The *facets* (each stored value of the paper records' ``dates`` and ``sources`` and how
many papers have it) are counted from the segments' live paper records and saved beside
them. A date or source filter picks the matching values from the facets and hands
Chroma a ``where`` on those values, so no query reads every paper record (see
:meth:`rag.store.Store.filter_papers`).

Authors and categories (:class:`People`) are postings instead: each author-name key
(:func:`rag.authors.index_keys`) and category -> the papers filed under it, memory-mapped
arrays (:mod:`rag.store.postings`) beside a count of each stored ``categories`` value (for
``ask stats``). They are counted from the paper records when first asked for in a state
of the index (a category or author filter, ``ask stats``; 10.5 s at 100k papers), then
saved under the facets key, and a catch-up brings saved ones up to date from the records
it reads anyway (:func:`_catch_up_people`): after a sync they cost nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag import lexical, segments
from rag.authors import index_keys
from rag.lexical import Lexical
from rag.settings import Settings
from rag.store.chroma import ChromaIndex, next_unsettled
from rag.store.postings import Postings, PostingsBuilder, category_keys, updated
from rag.store.prepared import Prepared
from rag.store.schema import FIRST, PAGE, is_paper_record, segment_fields, split_list

FACETS = "facets.json"
PEOPLE = "people.json"  # the category counts of the postings, saved with the facets key
POSTINGS = "postings"  # the author and category postings' folder
BUILD_PAGE = 1000  # rows per read while building (see build)


@dataclass
class People:
    """Each category -> papers with it; author-name keys and categories -> the papers
    filed under them (see the module)."""

    categories: dict[str, int]
    postings: Postings


@dataclass
class Facets:
    """Stored ``dates`` / ``sources`` values of the paper records -> papers with it, and
    (:class:`People`, counted when first asked for through ``load_people``) authors and
    categories."""

    dates: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    load_people: Callable[[], People] | None = field(default=None, repr=False, compare=False)
    _people: People | None = field(default=None, repr=False, compare=False)

    def people(self) -> People:
        if self._people is None:
            self._people = (self.load_people() if self.load_people is not None
                            else People({}, Postings.empty()))
        return self._people

    @property
    def categories(self) -> dict[str, int]:
        return self.people().categories

    @property
    def postings(self) -> Postings:
        return self.people().postings

    def category_counts(self) -> dict[str, int]:
        """Each category -> how many papers carry it, most papers first."""
        return dict(sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0])))

    def author_papers(self, key: str) -> set[str]:
        """Ids of the papers filed under one author-name key (see :mod:`rag.authors`)."""
        return self.postings.papers_of(key)

    def category_papers(self, wanted: str) -> set[str]:
        """Ids of the papers in a category ("cs.CL") or an archive ("cs"), case aside."""
        return self.postings.papers_of(f"#{wanted.strip().casefold()}")

    def source_counts(self) -> dict[str, int]:
        """Each source -> how many papers it lists, sorted by name."""
        out: Counter[str] = Counter()
        for value, count in self.sources.items():
            for source in split_list(value):
                out[source] += count
        return dict(sorted(out.items()))

    def all_dates(self) -> list[str]:
        return sorted({d for value in self.dates for d in split_list(value)})


@dataclass
class Cached:
    generation: str
    lexical: Lexical | None
    facets: Facets
    facets_key: str  # see facets_key()


def cache_folder(settings: Settings) -> Path:
    """Where this index's cache lives on this machine (one folder per index).

    A server's index is named by its URL. An embedded index is not named by its path: its
    cache sits inside its own data dir, so a data dir that is moved, copied or restored
    from a backup keeps a cache that is still valid (the generation check decides that),
    instead of rebuilding it (at 1M chunks a rebuild takes about 11 minutes)."""
    return settings.data_dir / "lexical" / _tag(settings.chroma_url or "embedded", settings)


def _tag(origin: str, settings: Settings) -> str:
    return hashlib.sha1(f"{origin}|{settings.collection}".encode()).hexdigest()[:12]


def _adopt_path_keyed(settings: Settings, folder: Path) -> None:
    """Move a cache that an older version named by the data dir's path to its new name,
    once, rather than rebuild it (and leave the old copy taking disk space)."""
    if settings.chroma_url or folder.exists():
        return
    old = folder.with_name(_tag(str(settings.data_dir.resolve()), settings))
    try:
        if old.is_dir():
            os.replace(old, folder)
    except OSError:  # another process moved it first, or a read-only folder: rebuilt
        pass


def _adopt_same_collection(folder: Path, collection: str) -> bool:
    """A server client's first look at a collection whose cache this data dir already
    holds under another name: the index built embedded here, now served by `chroma run
    --path DATA/chroma` (what README says to do with a large index). That cache is
    copied under the client's name (segments and deletion files linked: they are never
    written again) instead of building one by reading every chunk over HTTP, which at
    1M chunks takes many minutes. The generation check then decides, as for any saved
    cache, whether it is used as is or caught up. True if one was adopted."""
    if not collection or folder.exists():
        return False
    for other in sorted(p for p in folder.parent.glob("*") if p.is_dir() and p != folder):
        info = lexical.read_manifest(other)
        if info is None or info.get("collection") != collection:
            continue
        tmp = folder.with_name(f"{folder.name}.adopt{os.getpid()}-{threading.get_ident()}")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(other, tmp, copy_function=_link_immutable)
            os.replace(tmp, folder)
            return True
        except OSError:  # a full or read-only disk: built the usual way
            shutil.rmtree(tmp, ignore_errors=True)
            return False
    return False


def _link_immutable(src: str, dst: str) -> None:
    """Link a segment's arrays and deletion files (never rewritten); copy the rest."""
    path = Path(src)
    if path.parent.name.startswith("seg-") or ".del-" in path.name:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def facets_key(index: ChromaIndex) -> str:
    """What the facets depend on: the chunk set (``generation``; new listings of
    unchanged papers are written in a batch too, :meth:`rag.store.Store.update_paper_meta`)
    and ``listings``, which an index written before batches renewed instead."""
    meta = index.metadata()
    return f"{meta.get('generation', '')}|{meta.get('listings', '')}"


def _load_facets(folder: Path, key: str) -> Facets | None:
    try:
        saved = json.loads((folder / FACETS).read_text())
        if saved["key"] != key:
            return None
        return Facets(dict(saved["dates"]), dict(saved["sources"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_facets(folder: Path, key: str, facets: Facets) -> None:
    with contextlib.suppress(OSError):  # the cache is an optimisation (read-only data dir)
        (folder / FACETS).write_text(json.dumps(
            {"key": key, "dates": facets.dates, "sources": facets.sources}))


def _saved_people(folder: Path) -> tuple[str, People] | None:
    """The saved authors and categories and the facets key they are of (None: none)."""
    try:
        saved = json.loads((folder / PEOPLE).read_text())
        postings = Postings.load(folder / POSTINGS)
        return None if postings is None else (
            saved["key"], People(dict(saved["categories"]), postings))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_people(folder: Path, key: str) -> People | None:
    saved = _saved_people(folder)
    return saved[1] if saved is not None and saved[0] == key else None


def _counted(postings: Postings, names: set[str]) -> People:
    """The people of these postings: a category's count is its papers there."""
    return People({c: n for c in sorted(names)
                   if (n := len(postings.papers_of(f"#{c.casefold()}")))}, postings)


def people(index: ChromaIndex, folder: Path, key: str) -> People:
    """The authors and categories of this state of the index (``key``: see
    :func:`facets_key`): saved ones, else counted from the paper records and saved
    (postings first: a PEOPLE file names a key only when its POSTINGS are there)."""
    loaded = _load_people(folder, key)
    if loaded is not None:
        return loaded
    names, builder = set[str](), PostingsBuilder()
    for _, metas in _pages(index, FIRST):
        for m in metas:
            if is_paper_record(m):
                names.update(m.get("categories", "").split())
                builder.add(m["paper_id"], _people_keys(m))
    found = _counted(builder.build(), names)
    _save_people(folder, key, found)
    return found


def _people_keys(meta: dict) -> set[str]:
    return index_keys(meta.get("authors", "")) | category_keys(meta.get("categories", ""))


def _save_people(folder: Path, key: str, found: People) -> None:
    with contextlib.suppress(OSError):  # the cache is an optimisation (read-only data dir)
        (folder / PEOPLE).unlink(missing_ok=True)
        found.postings.save(folder / POSTINGS)
        (folder / PEOPLE).write_text(json.dumps({"key": key, "categories": found.categories}))


def _catch_up_people(folder: Path, base_generation: str, key: str, metas: list[dict]) -> None:
    """Bring saved authors and categories from ``base_generation`` to ``key``: the papers
    of ``metas`` (the chunks a catch-up added) lose their old keys and take their new
    record's. Saved ones of another state are left to be counted when next asked for."""
    saved = _saved_people(folder)
    if saved is None or saved[0].split("|")[0] != base_generation:
        return
    old = saved[1]
    records = [m for m in metas if is_paper_record(m) and m.get("n") == 0]
    postings = updated(old.postings, {m["paper_id"] for m in metas},
                       [(m["paper_id"], _people_keys(m)) for m in records])
    names = set(old.categories) | {c for m in records for c in m.get("categories", "").split()}
    _save_people(folder, key, _counted(postings, names))


def scan_facets(index: ChromaIndex) -> Facets:
    """The facets from the paper records alone (when only listings changed)."""
    dates, sources = Counter[str](), Counter[str]()
    offset = 0
    while True:
        res = index.read("get", where=FIRST, limit=PAGE, offset=offset, include=["metadatas"])
        _count_facets(res["metadatas"], dates, sources)
        if len(res["ids"]) < PAGE:
            return Facets(dict(dates), dict(sources))
        offset += PAGE


def _count_facets(metas: list[dict], dates: Counter, sources: Counter) -> None:
    for m in metas:
        if is_paper_record(m) and m.get("n") == 0:
            dates[m.get("dates", "")] += 1
            sources[m.get("sources", "")] += 1


def _pages(index: ChromaIndex, where: dict | None = None):
    """(ids, metadatas) of every chunk (``where``: of those it selects), a page at a time.
    Pages of 1,000: a 5,000-row get holds ~150 MB in Chroma at once (measured with
    400-token chunks), and is no faster."""
    offset = 0
    while True:
        res = index.read("get", where=where, limit=BUILD_PAGE, offset=offset,
                         include=["metadatas"])
        yield res["ids"], res["metadatas"]
        if len(res["ids"]) < BUILD_PAGE:
            return
        offset += BUILD_PAGE


def _collection(index: ChromaIndex) -> str:
    return str(getattr(index.collection, "id", ""))


def _snapshot_cached(lex: Lexical | None, generation: str, key: str) -> Cached:
    if lex is None or not lex.n_live:
        return Cached(generation, None, Facets(), key)
    dates, sources = lex.facets()
    return Cached(generation, lex, Facets(dict(dates), dict(sources)), key)


def build(index: ChromaIndex, folder: Path, generation: str, key: str) -> Cached:
    """Read the whole collection once (the first build, or a cache of another format or
    another collection); write one segment and its manifest into ``folder`` (atomically:
    built in a temporary folder, renamed into place)."""
    low = next_unsettled(index.metadata())  # read before the chunks (see catch_up)
    builder = segments.Builder(workdir=folder.parent)  # it spills next to the cache
    for ids, metas in _pages(index):
        f = segment_fields(metas)
        builder.add(ids, f["paper_ids"], f["texts"], f["batch"], f["record"], f["dates"],
                    f["sources"])
    info = {"generation": generation, "collection": _collection(index), "low": low}
    if builder.rows + builder.pending_rows() != index.read("count"):
        # The collection's rows and its count disagree (a write log not yet applied, e.g.
        # on a full disk): kept in memory only, so no saved cache claims this generation
        # while holding part of it.
        return _snapshot_cached(_in_memory(builder, info), generation, key)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    name = segments.new_name()
    try:
        builder.write(tmp / name)
        segments.write_manifest(tmp, {**info, "segments": [{"name": name, "deleted": None}]})
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)  # the arrays stay mapped across the rename
    except OSError:  # a read-only or full disk: in memory (the cache is an optimisation)
        shutil.rmtree(tmp, ignore_errors=True)
        return _snapshot_cached(_in_memory(builder, info), generation, key)
    cached = _snapshot_cached(lexical.load(folder, generation), generation, key)
    _save_facets(folder, key, cached.facets)
    return cached


def _in_memory(builder: segments.Builder, info: dict) -> Lexical | None:
    seg = builder.write(None)
    return None if seg is None else Lexical(None, info, [seg], [None])


def catch_up(index: ChromaIndex, folder: Path, base: Lexical, generation: str,
             key: str) -> Cached | None:
    """``base`` (the saved snapshot) brought to ``generation`` by reading only the chunks
    of the batches it may not have seen (``batch >= low``): a new segment for the chunks
    it lacks, deletion files for the rows they replace. None when that cannot be done
    (another collection, or the result would not hold the collection's count): then the
    caller builds from scratch."""
    info = base.info
    if info.get("collection") != _collection(index) or folder != base.folder:
        return None
    low_next = next_unsettled(index.metadata())  # before the read: see next_unsettled
    ids, metas = [], []
    for page_ids, page_metas in _pages(index, {"batch": {"$gte": int(info.get("low", 0))}}):
        ids += page_ids
        metas += page_metas
    fresh = segment_fields(metas)
    delete, new = changes(base, ids, fresh, int(info.get("low", 0)))
    n_deleted = sum(int(m.sum()) for m in delete.values())
    if base.n_live - n_deleted + len(new) != index.read("count"):
        return None
    apply(base, ids, fresh, delete, new, {"generation": generation, "low": low_next})
    _catch_up_people(folder, str(info.get("generation", "")), key, [metas[i] for i in new])
    cached = _snapshot_cached(lexical.load(folder, generation), generation, key)
    _save_facets(folder, key, cached.facets)
    return cached


def apply(base: Lexical, ids: list[str], fresh: dict[str, list], delete: dict[int, np.ndarray],
          new: list[int], update: dict) -> None:
    """Write what :func:`changes` found into ``base``'s folder: a segment for the chunks
    ``new`` points at, a new deletion file for each segment in ``delete``, then the
    manifest (``base``'s, with ``update``) that lists them, swapped in atomically."""
    assert base.folder is not None
    name = None
    if new:
        builder = segments.Builder(workdir=base.folder)
        builder.add([ids[i] for i in new], *([fresh[k][i] for i in new] for k in (
            "paper_ids", "texts", "batch", "record", "dates", "sources")))
        name = segments.new_name()
        builder.write(base.folder / name)
    _commit(base, name, delete, update)


def _commit(base: Lexical, name: str | None, delete: dict[int, np.ndarray],
            update: dict) -> None:
    """The manifest of ``base`` plus the segment ``name`` (written in its folder) and
    the rows ``delete`` marks, swapped in atomically."""
    assert base.folder is not None
    folder, entries = base.folder, [dict(e) for e in base.info["segments"]]
    if name is not None:
        entries.append({"name": name, "deleted": None})
    for pos, mask in delete.items():
        old = base.deleted[pos]
        entries[pos]["deleted"] = segments.write_deletions(
            folder, entries[pos]["name"], mask if old is None else (old | mask))
    segments.write_manifest(folder, {**base.info, **update, "segments": entries})


def from_prepared(index: ChromaIndex, folder: Path, base: Lexical | None, prepared: Prepared,
                  generation: str, key: str) -> Cached | None:
    """The cache brought to ``generation`` with the segment an ingest recorded as it
    wrote (:mod:`rag.store.prepared`), without reading the chunks back. None (then the
    caller catches up the usual way) unless the cache extends exactly the state the
    ingest started from (its generation, or an empty collection), the segment holds no
    chunk twice (a paper written twice in the run), and the counts agree with Chroma:
    ``base``'s live rows, less those of the papers rewritten, plus the segment's."""
    low = next_unsettled(index.metadata())
    count = index.read("count")
    extends = (base is not None and base.folder == folder
               and base.info.get("collection") == _collection(index)
               and base.info.get("generation") == prepared.start_generation)
    if not extends and not prepared.empty:
        return None
    rows = prepared.builder.rows + prepared.builder.pending_rows()
    if not rows:
        return None
    info = {"generation": generation, "collection": _collection(index), "low": low}
    target = folder if extends else folder.with_name(
        f"{folder.name}.tmp{os.getpid()}-{threading.get_ident()}")
    if not extends:
        shutil.rmtree(target, ignore_errors=True)
    name = segments.new_name()
    prepared.builder.write(target / name)
    seg = lexical.Segment.open(target / name)
    chunk_ids = np.asarray(seg.chunk_ids)
    delete: dict[int, np.ndarray] = {}
    if extends:
        assert base is not None
        delete = _by_segment(base, _rows_of_papers(base, np.unique(np.asarray(seg.paper_ids)))
                             & base.live)
        live = base.n_live - sum(int(m.sum()) for m in delete.values())
    else:
        live = 0
    if len(np.unique(chunk_ids)) != len(chunk_ids) or live + len(chunk_ids) != count:
        shutil.rmtree(target / name if extends else target, ignore_errors=True)
        return None
    if extends:
        assert base is not None
        _commit(base, name, delete, info)
        metas = prepared.people_metas()
        if metas is not None:
            _catch_up_people(folder, str(base.info.get("generation", "")), key, metas)
    else:
        segments.write_manifest(target, {**info, "segments": [{"name": name, "deleted": None}]})
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(target, folder)
    cached = _snapshot_cached(lexical.load(folder, generation), generation, key)
    _save_facets(folder, key, cached.facets)
    return cached


def changes(base: Lexical, ids: list[str], fresh: dict[str, list],
            low: int) -> tuple[dict[int, np.ndarray], list[int]]:
    """What the chunks read since batch ``low`` change in ``base``: (segment position ->
    rows newly deleted, positions in ``ids`` of the chunks to add).

    A chunk already held with the same batch is unchanged (a batch re-read because it
    was still open). Every other chunk read is added, and the rows it supersedes are
    deleted: every live row of its paper (a write replaces a paper's chunks whole) that
    is not an unchanged chunk. So is a row of a batch re-read that is no longer there.
    """
    held: dict[str, tuple[int, int]] = {}  # chunk id -> (global row, batch), recent rows
    for pos, seg in enumerate(base.segments):
        local = np.flatnonzero(np.asarray(seg.batch) >= low)
        off = int(base.offsets[pos])
        for r in local[base.live[local + off]].tolist():
            held[str(seg.chunk_ids[r])] = (r + off, int(seg.batch[r]))
    unchanged: set[int] = set()
    new: list[int] = []
    for i, (cid, batch) in enumerate(zip(ids, fresh["batch"], strict=True)):
        got = held.get(cid)
        if got is not None and got[1] == batch:
            unchanged.add(got[0])
        else:
            new.append(i)
    gone = np.zeros(len(base.live), dtype=bool)
    seen = set(ids)
    for cid, (row, _) in held.items():
        if cid not in seen:
            gone[row] = True
    gone |= _rows_of_papers(base, np.array(sorted({fresh["paper_ids"][i] for i in new})))
    if unchanged:
        gone[np.fromiter(unchanged, np.int64)] = False
    return _by_segment(base, gone & base.live), new


def _rows_of_papers(base: Lexical, papers: np.ndarray) -> np.ndarray:
    """A global row mask: every row of these papers (a write replaces a paper's chunks
    whole, so each row of a paper written again is superseded)."""
    rows = np.zeros(len(base.live), dtype=bool)
    if len(papers):
        for pos, seg in enumerate(base.segments):
            lo, hi = int(base.offsets[pos]), int(base.offsets[pos + 1])
            rows[lo:hi] = np.isin(np.asarray(seg.paper_ids), papers)
    return rows


def _by_segment(base: Lexical, gone: np.ndarray) -> dict[int, np.ndarray]:
    """A global row mask cut into segment position -> local mask (segments it touches)."""
    delete = {}
    for pos in range(len(base.segments)):
        lo, hi = int(base.offsets[pos]), int(base.offsets[pos + 1])
        if gone[lo:hi].any():
            delete[pos] = gone[lo:hi].copy()
    return delete


def optimize(folder: Path, generation: str, everything: bool = False,
             budget: int = lexical.BUILD_BUDGET) -> bool:
    """Merge segments (the tiered policy's next run, or ``everything`` into one); the
    manifest is swapped only once the merged segment is written, then the segments no
    manifest lists are removed. Call it holding the cache's lock. True if it merged."""
    lex = lexical.load(folder, generation)
    if lex is None or lex.folder is None:
        return False
    sizes = [s.n_rows - (0 if d is None else int(d.sum()))
             for s, d in zip(lex.segments, lex.deleted, strict=True)]
    run = (list(range(len(sizes))) if everything and (
        len(sizes) > 1 or any(d is not None for d in lex.deleted))
           else segments.plan_merge(sizes))
    if not run:
        segments.collect_garbage(folder, lex.info)  # what a killed merge or build left
        return False
    name = segments.new_name()
    segments.merge([lex.segments[i] for i in run], [lex.deleted[i] for i in run],
                   folder / name, budget)
    entries = [dict(e) for e in lex.info["segments"]]
    entries[run[0]:run[-1] + 1] = [{"name": name, "deleted": None}]
    info = {**lex.info, "segments": entries}
    segments.write_manifest(folder, info)
    segments.collect_garbage(folder, info)
    return True


@contextlib.contextmanager
def write_lock(folder: Path) -> Iterator[bool]:
    """Hold ``<folder>.lock`` (one cache writer at a time on this machine: catch-up,
    merge, garbage collection); yields False when it cannot be made (read-only)."""
    import fcntl

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fh = open(folder.with_name(folder.name + ".lock"), "a+b")  # noqa: SIM115
    except OSError:
        yield False
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield True
    finally:
        fh.close()


STAGED = ".next"  # suffix of the folder a rebuild fills beside the live cache


class GenerationCache:
    """The cache of the current generation, loaded or rebuilt on demand (thread-safe).

    ``staged``: the cache of a collection a rebuild is filling (:meth:`rag.store.Store.
    rebuilding`), kept in ``<folder>.next`` until the swap, then moved into place
    (:meth:`promote`). A reader that meets the new generation before the move loads it
    from there rather than building it again.
    """

    def __init__(self, settings: Settings, *, staged: bool = False):
        live = cache_folder(settings)
        self.staged = live.with_name(live.name + STAGED)
        self.folder = self.staged if staged else live
        if not staged:
            _adopt_path_keyed(settings, self.folder)
        self._current: Cached | None = None
        self._lock = threading.Lock()  # one rebuild at a time (UI threads)

    def current(self, index: ChromaIndex) -> Cached:
        with self._lock:
            # Other processes (another `ask`, other machines on a shared server) may have
            # written since we last looked: read the current generation every time.
            index.refresh()
            gen, key = index.generation(), facets_key(index)
            cached = self._current
            if cached is None or cached.lexical is None or cached.generation != gen:
                cached = self._load(index, gen, key) or self._update(index, gen, key)
            if cached.facets_key != key:  # new listings of unchanged papers (or loaded)
                cached.facets = (_load_facets(self.folder, key)
                                 or _load_facets(self.staged, key) or (
                                     _snapshot_cached(cached.lexical, gen, key).facets
                                     if cached.lexical is not None else scan_facets(index)))
                _save_facets(self.folder, key, cached.facets)
                cached.facets_key = key
            if cached.facets.load_people is None:
                folder = self.folder
                cached.facets.load_people = lambda: people(index, folder, key)
            self._current = cached
            return cached

    def _update(self, index: ChromaIndex, gen: str, key: str) -> Cached:
        """Bring the saved cache to ``gen``: catch up from the segments it has, or build
        it from scratch; under the cache's lock (another process may be at it: then its
        result is loaded)."""
        with write_lock(self.folder) as locked:
            if not locked:
                return build(index, self.folder, gen, key)
            loaded = self._load(index, gen, key)
            if loaded is not None:
                return loaded
            base = lexical.load(self.folder)  # of an older generation
            if base is None and index.settings.chroma_url and _adopt_same_collection(
                    self.folder, _collection(index)):
                loaded = self._load(index, gen, key)
                if loaded is not None:
                    return loaded
                base = lexical.load(self.folder)
            cached = None
            prepared = index.prepared if index.batch is None else None
            if prepared is not None:  # an ingest's own segment (rag.store.prepared)
                index.prepared = None
                try:
                    cached = from_prepared(index, self.folder, base, prepared, gen, key)
                except OSError:  # a full disk: the usual way
                    cached = None
                finally:
                    prepared.close()
            if cached is None and base is not None and base.folder is not None:
                try:
                    cached = catch_up(index, self.folder, base, gen, key)
                except OSError:  # a full disk: from scratch (in memory if need be)
                    cached = None
            if cached is None or cached.lexical is None:
                return build(index, self.folder, gen, key)
            with contextlib.suppress(OSError):  # merging is an optimisation
                if optimize(self.folder, gen):  # the same chunks, in fewer segments
                    cached.lexical = lexical.load(self.folder, gen) or cached.lexical
            return cached

    def _load(self, index: ChromaIndex, gen: str, key: str) -> Cached | None:
        """The saved BM25 of ``gen`` (here, or staged by a rebuild that just swapped),
        if it holds the whole generation (else None: rebuilt)."""
        for folder in dict.fromkeys((self.folder, self.staged)):
            lex = lexical.load(folder, gen)
            if lex is not None and lex.n_live and lex.n_live == index.read("count"):
                facets = _load_facets(folder, key)
                return (Cached(gen, lex, facets, key) if facets is not None
                        else _snapshot_cached(lex, gen, key))
        return None

    def optimize(self, index: ChromaIndex) -> bool:
        """Merge every segment into one (``ask doctor --optimize``)."""
        self.current(index)
        with self._lock, write_lock(self.folder) as locked:
            gen = index.generation()
            if not locked or not optimize(self.folder, gen, everything=True):
                return False
            self._current = None
        return True

    def promote(self, live: GenerationCache) -> None:
        """A rebuild's staged cache becomes ``live``'s (after the swap of the collection)."""
        # OSError: a reader built the live one first; theirs stands.
        with self._lock, contextlib.suppress(OSError):
            shutil.rmtree(live.folder, ignore_errors=True)
            os.replace(self.folder, live.folder)
            self.folder = live.folder

    def clear(self) -> None:
        with self._lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._current = None

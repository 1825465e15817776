"""The per-generation cache of the index: BM25 (:mod:`rag.lexical`) and the facets.

The chunks collection carries a ``generation`` token in its metadata, renewed by every
write; a process whose cache names another generation rebuilds it from the collection.
That keeps BM25 in step in server mode too, where other machines write the same
collection, and a query process loads the cache (memory-mapped) instead of reading the
whole collection.

The same pass over the collection counts the *facets*: each stored value of the paper
records' ``dates`` and ``sources`` and how many papers have it. New listings of
unchanged papers renew a second token (``listings``) instead of the generation: the
facets are then counted again from the paper records, and BM25 is left as it is. A
date or source filter picks the matching values from the facets and hands Chroma a
``where`` on those values, so no query reads every paper record (see
:meth:`rag.store.Store.filter_papers`). Authors and categories are postings instead: each
author-name key (:func:`rag.authors.index_keys`) and category -> the papers filed under
it, memory-mapped arrays in a folder of their own beside the counts
(:mod:`rag.store.postings`); the counts keep each stored ``categories`` value's papers,
for ``ask stats``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rag import lexical
from rag.authors import index_keys
from rag.lexical import Lexical
from rag.settings import Settings
from rag.store.chroma import ChromaIndex
from rag.store.postings import Postings, PostingsBuilder, category_keys
from rag.store.schema import FIRST, PAGE, is_paper_record, split_list

FACETS = "facets.json"
POSTINGS = "postings"  # the postings' folder, saved with the same key as FACETS
BUILD_PAGE = 1000  # rows per read while building (see build)


@dataclass
class Facets:
    """Stored ``dates`` / ``sources`` / ``categories`` values of the paper records ->
    papers with it; ``postings``: author-name key or category -> the papers filed under it."""

    dates: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    postings: Postings = field(default_factory=Postings.empty)

    def category_counts(self) -> dict[str, int]:
        """Each category -> how many papers carry it, most papers first."""
        out: Counter[str] = Counter()
        for value, count in self.categories.items():
            for category in value.split():
                out[category] += count
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

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


def facets_key(index: ChromaIndex) -> str:
    """What the facets depend on: the chunk set (``generation``) and the listings of
    unchanged papers (``listings``, renewed by :meth:`rag.store.Store.update_paper_meta`,
    which leaves the texts, so BM25, as they are)."""
    meta = index.metadata()
    return f"{meta.get('generation', '')}|{meta.get('listings', '')}"


def _load_facets(folder: Path, key: str) -> Facets | None:
    try:
        saved = json.loads((folder / FACETS).read_text())
        postings = Postings.load(folder / POSTINGS)
        if saved["key"] != key or postings is None:
            return None
        return Facets(dict(saved["dates"]), dict(saved["sources"]),
                      dict(saved["categories"]), postings)
    except (OSError, ValueError, KeyError, TypeError):  # an older cache: counted again
        return None


def _saved_key(folder: Path) -> str | None:
    try:
        return json.loads((folder / FACETS).read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_facets(folder: Path, key: str, facets: Facets) -> None:
    if _saved_key(folder) == key and (folder / POSTINGS).is_dir():
        return  # loaded from there: the postings (mapped by this process) stay as they are
    with contextlib.suppress(OSError):  # the cache is an optimisation (read-only data dir)
        # Postings first: a FACETS file names a key only when its POSTINGS are there.
        (folder / FACETS).unlink(missing_ok=True)
        facets.postings.save(folder / POSTINGS)
        (folder / FACETS).write_text(json.dumps(
            {"key": key, "dates": facets.dates, "sources": facets.sources,
             "categories": facets.categories}))


class FacetCounter:
    """The facets counted over pages of chunk metadata (paper records only)."""

    def __init__(self) -> None:
        self.dates, self.sources, self.categories = Counter[str](), Counter[str](), Counter[str]()
        self.postings = PostingsBuilder()

    def add(self, metas: list[dict]) -> None:
        for m in metas:
            if is_paper_record(m) and m.get("n") == 0:
                self.dates[m.get("dates", "")] += 1
                self.sources[m.get("sources", "")] += 1
                if m.get("categories"):
                    self.categories[m["categories"]] += 1
                self.postings.add(m["paper_id"], index_keys(m.get("authors", ""))
                                  | category_keys(m.get("categories", "")))

    def facets(self) -> Facets:
        return Facets(dict(self.dates), dict(self.sources), dict(self.categories),
                      self.postings.build())


def scan_facets(index: ChromaIndex) -> Facets:
    """The facets from the paper records alone (when only listings changed)."""
    counter = FacetCounter()
    offset = 0
    while True:
        res = index.read("get", where=FIRST, limit=PAGE, offset=offset, include=["metadatas"])
        counter.add(res["metadatas"])
        if len(res["ids"]) < PAGE:
            return counter.facets()
        offset += PAGE


def build(index: ChromaIndex, folder: Path, generation: str, key: str) -> Cached:
    """Read the whole collection once; write BM25 and the facets into ``folder``
    (atomically: built in a temporary folder, renamed into place)."""
    builder = lexical.Builder(workdir=folder.parent)  # its segments spill next to the cache
    facet_counter = FacetCounter()
    # Pages of 1,000: a 5,000-row get holds ~150 MB in Chroma at once (measured with
    # 400-token chunks), and is no faster.
    offset = builder_rows = 0
    while True:
        res = index.read("get", limit=BUILD_PAGE, offset=offset, include=["metadatas"])
        metas = res["metadatas"]
        builder.add(res["ids"], [m["paper_id"] for m in metas], [m["text"] for m in metas])
        builder_rows += len(res["ids"])
        facet_counter.add(metas)
        if len(res["ids"]) < BUILD_PAGE:
            break
        offset += BUILD_PAGE
    facets = facet_counter.facets()
    if builder_rows != index.read("count"):
        # The collection's rows and its count disagree (a write log not yet applied, e.g.
        # on a full disk): kept in memory only, so no saved cache claims this generation
        # while holding part of it.
        return Cached(generation, builder.build(generation, None), facets, key)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    # Written straight into tmp; in memory when it cannot be (the cache is an
    # optimisation: a read-only data dir still answers).
    lex = builder.build(generation, tmp)
    try:
        if lex is not None and tmp.exists():
            _save_facets(tmp, key, facets)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)  # the arrays stay mapped across the rename
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return Cached(generation, lex, facets, key)


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
                lex = self._load(index, gen)
                cached = (build(index, self.folder, gen, key) if lex is None
                          else Cached(gen, lex, Facets(), ""))
            if cached.facets_key != key:  # new listings of unchanged papers (or loaded)
                cached.facets = (_load_facets(self.folder, key)
                                 or _load_facets(self.staged, key) or scan_facets(index))
                _save_facets(self.folder, key, cached.facets)
                cached.facets_key = key
            self._current = cached
            return cached

    def _load(self, index: ChromaIndex, gen: str) -> Lexical | None:
        """The saved BM25 of ``gen`` (here, or staged by a rebuild that just swapped),
        if it holds the whole generation (else None: rebuilt)."""
        for folder in dict.fromkeys((self.folder, self.staged)):
            lex = lexical.load(folder, gen)
            if lex is not None and len(lex.chunk_ids) == index.read("count"):
                return lex
        return None

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

"""The per-generation cache of the index: BM25 (:mod:`rag.lexical`) and the facets.

The chunks collection carries a ``generation`` token in its metadata, renewed by every
write; a process whose cache names another generation rebuilds it from the collection.
That keeps BM25 in step in server mode too, where other machines write the same
collection, and a query process loads the cache (memory-mapped) instead of reading the
whole collection.

The same pass over the collection counts the *facets*: each stored value of the paper
records' ``dates`` and ``sources`` and how many papers have it. A date or source filter
picks the matching values from them and hands Chroma a ``where`` on those values, so
no query reads every paper record (see :meth:`rag.store.Store.filter_papers`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rag import lexical
from rag.lexical import Lexical
from rag.settings import Settings
from rag.store.chroma import ChromaIndex
from rag.store.schema import is_paper_record, split_list

FACETS = "facets.json"
BUILD_PAGE = 1000  # rows per read while building (see build)


@dataclass
class Facets:
    """Stored ``dates`` / ``sources`` values of the paper records -> papers with it."""

    dates: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)

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


def cache_folder(settings: Settings) -> Path:
    """Where this index's cache lives on this machine (one folder per index)."""
    origin = settings.chroma_url or str(settings.data_dir.resolve())
    tag = hashlib.sha1(f"{origin}|{settings.collection}".encode()).hexdigest()[:12]
    return settings.data_dir / "lexical" / tag


def load(folder: Path, generation: str) -> Cached | None:
    """The saved cache of this generation, or None (missing, stale, damaged, older)."""
    lex = lexical.load(folder, generation)
    if lex is None:
        return None
    try:
        saved = json.loads((folder / FACETS).read_text())
        if saved["generation"] != generation:
            return None
        return Cached(generation, lex, Facets(dict(saved["dates"]), dict(saved["sources"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build(index: ChromaIndex, folder: Path, generation: str) -> Cached:
    """Read the whole collection once; write BM25 and the facets into ``folder``
    (atomically: built in a temporary folder, renamed into place)."""
    builder = lexical.Builder(workdir=folder.parent)  # its segments spill next to the cache
    dates, sources = Counter[str](), Counter[str]()
    # Pages of 1,000: a 5,000-row get holds ~150 MB in Chroma at once (measured with
    # 400-token chunks), and is no faster.
    offset = 0
    while True:
        res = index.read("get", limit=BUILD_PAGE, offset=offset, include=["metadatas"])
        metas = res["metadatas"]
        builder.add(res["ids"], [m["paper_id"] for m in metas], [m["text"] for m in metas])
        for m in metas:
            if is_paper_record(m) and m.get("n") == 0:
                dates[m.get("dates", "")] += 1
                sources[m.get("sources", "")] += 1
        if len(res["ids"]) < BUILD_PAGE:
            break
        offset += BUILD_PAGE
    facets = Facets(dict(dates), dict(sources))
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    # Written straight into tmp; in memory when it cannot be (the cache is an
    # optimisation: a read-only data dir still answers).
    lex = builder.build(generation, tmp)
    try:
        if lex is not None and tmp.exists():
            (tmp / FACETS).write_text(json.dumps(
                {"generation": generation, "dates": facets.dates, "sources": facets.sources}))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)  # the arrays stay mapped across the rename
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return Cached(generation, lex, facets)


class GenerationCache:
    """The cache of the current generation, loaded or rebuilt on demand (thread-safe)."""

    def __init__(self, settings: Settings):
        self.folder = cache_folder(settings)
        self._current: Cached | None = None
        self._lock = threading.Lock()  # one rebuild at a time (UI threads)

    def current(self, index: ChromaIndex) -> Cached:
        with self._lock:
            # Other processes (another `ask`, other machines on a shared server) may have
            # written since we last looked: read the current generation every time.
            index.refresh()
            gen = index.generation()
            cached = self._current
            if cached is None or cached.lexical is None or cached.generation != gen:
                cached = load(self.folder, gen) or build(index, self.folder, gen)
                self._current = cached
            return cached

    def clear(self) -> None:
        with self._lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._current = None

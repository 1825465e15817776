"""The category and author filters at scale, on a real embedded Chroma collection.

N synthetic paper records (one chunk each, small random vectors: the filters never look
at vectors) are written in Abstracta's layout; authors are drawn Zipf-like from 60,000
surnames and 3,000 given names (so "Li"-like surnames are common and most are rare),
1-3 categories from 150. Then, per filter, the median time of
:func:`rag.retrieve.filters.allowed_papers` (what a question pays before searching)
next to the two other ways to do it:

- *read every record*: iterate all paper records and test each (what a filter without
  facets costs, the floor of any scan);
- *Chroma array*: the same author keys stored as a list on chunk #0 and selected with
  ``where={"author_keys": {"$contains": key}}`` (Chroma's own metadata filtering; a
  schema change an existing index would need a rewrite for).

And the facets' own price: counting them during the cache build, the size of
``facets.json`` and the postings, and loading them (once per process and generation).

    python benchmarks/filters.py --papers 100000 --workdir /tmp/filters-bench [--reuse]
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

DIM = 16


def _names(rng: random.Random, n: int, parts: int) -> list[str]:
    syll = ["ka", "li", "ng", "wa", "to", "mi", "ra", "sen", "ho", "ver", "an", "el", "do",
            "chi", "zu", "pe", "mar", "tin", "son", "berg", "ova", "ez", "ni", "ko"]
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(syll) for _ in range(rng.randint(1, parts))).title())
    return sorted(out)


def records(n: int, seed: int = 7):
    """(paper id, chunk #0 metadata) for n synthetic papers (deterministic per seed)."""
    from rag.identity import title_key
    from rag.store.schema import chunk_metadata, metadata_for_paper
    from rag.types import StoredPaper

    rng = random.Random(seed)
    surnames, given = _names(rng, 60_000, 4), _names(rng, 3_000, 3)
    cats = [f"cs.{c}" for c in ("CL", "LG", "CV", "AI", "IR", "DC", "RO", "NE", "CR", "SE")] + [
        f"x{i}.Y{i % 7}" for i in range(140)]
    s_weights = list(itertools.accumulate(1 / (r + 1) for r in range(len(surnames))))
    c_weights = list(itertools.accumulate(1 / (r + 1) for r in range(len(cats))))
    for i in range(n):
        k = rng.randint(1, 8)
        picked = rng.choices(surnames, cum_weights=s_weights, k=k)
        authors = ", ".join(f"{g} {s}" for g, s in zip(rng.choices(given, k=k), picked,
                                                        strict=True))
        title = f"Paper {i}"
        paper = StoredPaper(f"25{i // 100000:02d}.{i % 100000:05d}", title, "An abstract.",
                            ("2025-01-02",), ("bench.jsonl",), authors=authors,
                            categories=" ".join(dict.fromkeys(
                                rng.choices(cats, cum_weights=c_weights, k=rng.randint(1, 3)))))
        meta = chunk_metadata(paper.paper_id, 0, metadata_for_paper(
            paper, "h", title_key(title)), f"{title}\nAn abstract.")
        yield paper.paper_id, meta


def build(workdir: Path, n: int):
    """The store, filled (author keys also stored as a Chroma array, for the comparison)."""
    from rag.authors import index_keys
    from rag.settings import Settings
    from rag.store import open_store
    from rag.store.postings import category_keys

    shutil.rmtree(workdir, ignore_errors=True)
    store = open_store(Settings(data_dir=workdir, _env_file=None))
    rng = np.random.default_rng(0)
    batch: list[tuple[str, dict]] = []
    t0 = time.perf_counter()
    for rec in [*records(n), None]:
        if rec is not None:
            pid, meta = rec
            keys = sorted(index_keys(meta["authors"]))
            cats = sorted(category_keys(meta["categories"]))
            batch.append((pid, {**meta, **({"author_keys": keys} if keys else {}),
                                "category_keys": cats}))
        if len(batch) == 5000 or (rec is None and batch):
            ids = [p for p, _ in batch]
            store.replace_chunks(ids, [f"{p}#0" for p in ids],
                                 rng.random((len(ids), DIM), dtype=np.float32),
                                 [m for _, m in batch], delete_old=False)
            batch = []
    store.bump_generation(indexed=True)
    print(f"wrote {n:,} paper records in {time.perf_counter() - t0:.1f} s")
    return store


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    """(median milliseconds, last result)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def facets_costs(store) -> None:
    from rag.store.cache import PEOPLE, POSTINGS, _load_people, facets_key, people

    t0 = time.perf_counter()
    snap = store.snapshot()  # BM25 + date/source facets
    print(f"cache build (BM25 + date/source facets): {time.perf_counter() - t0:.1f} s")
    folder, key = store.lexical_folder, facets_key(store.index)
    ms, _ = timed(lambda: people(store.index, folder, key + "|bench"), 1)
    print(f"  counting authors and categories from the paper records (once per state of "
          f"the index, when first asked for): {ms / 1000:.2f} s")
    snap.facets.people()
    size = sum(f.stat().st_size for f in (folder / POSTINGS).iterdir())
    print(f"  {PEOPLE}: {(folder / PEOPLE).stat().st_size / 1e6:.2f} MB, "
          f"{POSTINGS}/: {size / 1e6:.1f} MB (memory-mapped, not read)")
    ms, _ = timed(lambda: _load_people(folder, key), 3)
    print(f"  loading them (once per process and state of the index): {ms:.0f} ms")
    f = snap.facets
    print(f"  {len(f.category_counts())} categories, {len(f.postings):,} keys, "
          f"{len(f.postings.postings):,} postings")


def per_question(store) -> None:
    from rag.authors import names, paper_matches, wanted
    from rag.errors import QuestionError
    from rag.retrieve.filters import Filters, allowed_papers

    facets = store.snapshot().facets
    everything = list(store.iter_papers())
    top = list(facets.category_counts())
    counts: dict[str, int] = {}
    for p in everything:
        for name in names(p.authors):
            counts[name[-1]] = counts.get(name[-1], 0) + 1
    by_size = sorted(counts, key=counts.__getitem__)
    common, rare = by_size[-1], by_size[len(by_size) // 2]
    given = next(n[0] for p in everything for n in names(p.authors) if n[-1] == common)
    cases = [
        ("--category " + top[0], Filters(categories=(top[0],))),
        ("--category " + top[-1], Filters(categories=(top[-1],))),
        ("--category cs (archive)", Filters(categories=("cs",))),
        (f"--author {common} (commonest)", Filters(authors=(common,))),
        (f"--author {rare} (median)", Filters(authors=(rare,))),
        (f"--author '{given[0]}. {common}'", Filters(authors=(f"{given[0]}. {common}",))),
        (f"--author '{given} {common}'", Filters(authors=(f"{given} {common}",))),
        (f"--author '{given} X. {common}'", Filters(authors=(f"{given} X. {common}",))),
        (f"--category {top[0]} --author {common}", Filters(categories=(top[0],),
                                                           authors=(common,))),
    ]
    print(f"\n{'filter':44} {'papers':>8} {'facets ms':>10} {'read-all ms':>12} "
          f"{'Chroma array ms':>16}")
    for label, filters in cases:
        def allowed(f=filters):
            try:
                return allowed_papers(store, facets, f)
            except QuestionError:  # matches nothing: said so, in the same time
                return []

        ms, ids = timed(allowed)

        def read_all(f=filters):
            papers = store.iter_papers()
            if f.authors:
                want = [wanted(a) for a in f.authors]
                papers = (p for p in papers if any(paper_matches(w, p.authors) for w in want))
            return [p.paper_id for p in papers
                    if f.keeps_categories(tuple(p.categories.split()))]

        scan = ""
        if label == cases[0][0] or label == cases[3][0]:  # the same read whatever the filter
            scan_ms, scanned = timed(read_all, 1)
            assert sorted(scanned) == sorted(ids), label
            scan = f"{scan_ms:.0f}"
        chroma = ""
        where = _array_where(filters)
        if where is not None:
            c_ms, res = timed(lambda w=where: store.index.read("get", where=w, include=[]))
            assert len(res["ids"]) == len(ids), label
            chroma = f"{c_ms:.0f}"
        print(f"{label:44} {len(ids):8,} {ms:10.1f} {scan:>12} {chroma:>16}")
    print(f"(read-all iterates {len(everything):,} paper records)")


def _array_where(filters) -> dict | None:
    """The same one-key filter as Chroma's own array filtering (None: not one key)."""
    if filters.categories and not filters.authors:
        return {"category_keys": {"$contains": f"#{filters.categories[0].casefold()}"}}
    if filters.authors and not filters.categories and " " not in filters.authors[0]:
        return {"author_keys": {"$contains": filters.authors[0]}}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/abstracta-filters-bench"))
    parser.add_argument("--reuse", action="store_true",
                        help="keep the collection --workdir already holds (not written again)")
    args = parser.parse_args()
    if args.reuse and args.workdir.exists():
        from rag.settings import Settings
        from rag.store import open_store

        store = open_store(Settings(data_dir=args.workdir, _env_file=None))
        store.cache.clear()  # built again: its cost is measured
    else:
        store = build(args.workdir, args.papers)
    facets_costs(store)
    per_question(store)


if __name__ == "__main__":
    main()

"""Helpers shared by the core tests.

Imported as a plain module: pytest puts this folder on sys.path.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "rag" / "data" / "corpus"
BUNDLED_PAPERS = 358
BUNDLED_RECORDS = 404


def write(path: Path, content: str | bytes) -> Path:
    """Write text (UTF-8, exactly as given) or bytes to ``path``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def listing_page(date: str, papers: list[tuple[str, str]]) -> str:
    """A listing page in the bundled layout: header, a date, title/abstract paragraphs."""
    parts = ["new", "Get trending papers in your email inbox!", "Daily Papers", date]
    for title, abstract in papers:
        parts += [title, abstract]
    return "\n\n".join(parts) + "\n"


def one_line(stderr: str) -> list[str]:
    """The 'Error: ...' lines of a CLI run."""
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def index_snapshot(data_dir: Path) -> dict:
    """Paper ids, chunk ids and chunk texts of the embedded index in ``data_dir``."""
    from rag.settings import load_settings
    from rag.store import open_store, snapshot

    store = open_store(load_settings(data_dir=data_dir))
    chunks = snapshot(store)
    papers = {r.paper_id: r for r in chunks.values() if r.paper is not None}
    return {
        "papers": sorted(papers),
        "paper_meta": {pid: (r.content_hash, r.paper.dates, r.paper.sources)
                       for pid, r in papers.items() if r.paper is not None},
        "chunks": sorted(chunks),
        "chunk_texts": {cid: r.text for cid, r in chunks.items()},
        "chunk_count": store.count_chunks(),
        "paper_count": store.count_papers(),
    }


LEXICAL_QUESTIONS = ["quibblefrost sketches", "group quantization with structured sparsity",
                     "the of and", "diffusion models for video generation", "MPI code",
                     "pipeline parallelism for giant neural networks", "zzzunknownword"]


def assert_lexical_is_a_fresh_build(store, folder: Path) -> None:
    """The store's current BM25 snapshot (caught up segment by segment) scores exactly as
    one built from scratch by reading the whole collection into ``folder``: the same
    chunks, document frequencies, and top-100 chunks with their scores."""
    import pytest

    from rag.store.cache import build, facets_key
    from rag.text import terms

    snap = store.snapshot()
    lex = snap.lexical
    fresh = build(store.index, folder, store.generation(), facets_key(store.index))
    ref = fresh.lexical
    assert sorted(map(str, lex.chunk_ids)) == sorted(map(str, ref.chunk_ids))
    assert snap.facets == fresh.facets
    for question in LEXICAL_QUESTIONS:
        q = terms(question)
        for t in q:
            assert lex.doc_freq(t) == ref.doc_freq(t)
        rows, scores = lex.top(q, 100)
        ref_rows, ref_scores = ref.top(q, 100)
        got = dict(zip(lex.chunk_ids[rows].tolist(), scores.tolist(), strict=True))
        want = dict(zip(ref.chunk_ids[ref_rows].tolist(), ref_scores.tolist(), strict=True))
        if len(want) < 100:  # no cut-off: the same chunks (else ties may differ at it)
            assert set(got) == set(want)
        for cid in set(got) & set(want):
            assert got[cid] == pytest.approx(want[cid], rel=1e-6)
        assert sorted(got.values()) == pytest.approx(sorted(want.values()), rel=1e-6)

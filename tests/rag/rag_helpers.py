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

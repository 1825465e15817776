"""The records that flow through the pipeline.

``Paper`` comes out of a loader, ``Chunk`` goes into the store, ``Hit`` comes out
of retrieval (one per paper, never per chunk), ``Answer`` comes out of an
answerer and carries its ``Citation``s. All are frozen: a stage makes new
records, it never edits the ones it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Listing:
    """One place a paper was seen: a listing date and the file it came from."""

    date: str  # ISO date ("2024-08-13") or yearless ISO ("--08-13") or "" when unknown
    source: str  # file name (not the full path: paths differ between machines)


@dataclass(frozen=True)
class Paper:
    """A paper as a loader found it (before ingest assigns its final id)."""

    title: str
    abstract: str
    listings: tuple[Listing, ...] = ()
    arxiv_id: str | None = None
    record_id: str | None = None  # the file's own non-arXiv id, namespaced: "csv:W27"
    authors: str = ""
    url: str = ""
    categories: str = ""
    where: str = ""  # "file.txt:123" for messages about this record


@dataclass(frozen=True)
class StoredPaper:
    """A paper as the index holds it: one per paper id, every listing merged."""

    paper_id: str
    title: str
    abstract: str
    dates: tuple[str, ...]
    sources: tuple[str, ...]
    authors: str = ""
    url: str = ""
    categories: str = ""  # arXiv categories, space-separated ("cs.CL cs.AI"), when known

    @property
    def date(self) -> str:
        """The earliest listing date, for display."""
        return self.dates[0] if self.dates else ""

    @property
    def link(self) -> str:
        """Where to look the paper up: its own URL, its arXiv page, or an arXiv title search."""
        if self.url:
            return self.url
        from rag.identity import normalize_arxiv_id

        if normalize_arxiv_id(self.paper_id):
            return f"https://arxiv.org/abs/{self.paper_id}"
        from urllib.parse import quote_plus

        return f"https://arxiv.org/search/?searchtype=title&query={quote_plus(self.title)}"


@dataclass(frozen=True)
class Chunk:
    """A piece of one abstract, embedded with the paper title in front of it."""

    chunk_id: str  # "<paper_id>#<n>"
    paper_id: str
    index: int
    text: str  # what is embedded and lexically indexed: title + abstract span


@dataclass(frozen=True)
class Hit:
    """One retrieved paper, with the evidence that ranked it."""

    rank: int
    paper: StoredPaper
    score: float  # fused score, higher is better (not comparable across questions)
    relevance: float  # 0..1 calibrated relevance used for abstention
    dense: float | None = None  # best cosine similarity among its chunks
    lexical: float | None = None  # best BM25 score among its chunks


@dataclass(frozen=True)
class Citation:
    """The paper behind an [n] in an answer."""

    n: int
    paper_id: str
    title: str


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    answerer: str  # "offline" or "llm:<model>"
    standalone_question: str = ""  # the rewritten follow-up, when it differs
    supported: bool = True  # False: no sentence carries a valid citation
    note: str = ""  # e.g. why the LLM was not used
    removed_citations: int = 0  # [n] that pointed to no source, dropped by the check
    unsupported_sentences: tuple[str, ...] = ()
    # Token usage from the LLM; None when no LLM answered or the server did not report
    # it (llama.cpp's stream ignores stream_options.include_usage).
    usage: dict | None = None
    timings_ms: dict = field(default_factory=dict)
    raw_reply: str = ""  # the LLM's reply before the check (eval records it)

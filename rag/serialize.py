"""Answers and hits as plain JSON-ready dicts: the stable ``ask --json`` contract.

The CLI prints it, the UI's ``/ask`` endpoint returns it, scripts and the eval
harness read it; the keys are documented in the README ("JSON output"). A change
that removes or renames a key bumps ``JSON_SCHEMA_VERSION``. Every number is finite: a
score that overflowed is ``null`` (``Infinity`` and ``NaN`` are not JSON, and
JavaScript's ``JSON.parse`` rejects them).
"""

from __future__ import annotations

import math
import numbers

from rag.types import Answer, Hit, StoredPaper

JSON_SCHEMA_VERSION = 1


def hit_to_dict(hit: Hit) -> dict:
    """One ranked paper of ``sources``: rank, id, title, scores, dates, sources, link."""
    paper = hit.paper
    return {
        "rank": hit.rank, "paper_id": paper.paper_id, "title": paper.title,
        "score": finite(hit.score), "relevance": finite(hit.relevance), "date": paper.date,
        "dates": list(paper.dates), "source": paper.sources[0] if paper.sources else "",
        "sources": list(paper.sources), "url": paper.link,
    }


def paper_to_dict(paper: StoredPaper) -> dict:
    """One indexed paper's full record (``ask similar --json``'s ``paper``, the MCP
    ``get_paper`` tool, ``GET /api/v1/papers/{id}``)."""
    return {
        "paper_id": paper.paper_id, "title": paper.title, "abstract": paper.abstract,
        "authors": paper.authors, "date": paper.date, "dates": list(paper.dates),
        "sources": list(paper.sources), "url": paper.link, "categories": paper.categories,
    }


def answer_to_dict(answer: Answer) -> dict:
    """The ``ask --json`` object of one answer (every ``citations[].paper_id`` is one of
    ``sources[].paper_id``)."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "supported": answer.supported,
        "citations": [{"n": c.n, "paper_id": c.paper_id, "title": c.title}
                      for c in answer.citations],
        "sources": [hit_to_dict(h) for h in answer.hits],
        "answerer": answer.answerer,
        "standalone_question": answer.standalone_question or None,
        "note": answer.note or None,
        "removed_citations": answer.removed_citations,
        "unsupported_sentences": list(answer.unsupported_sentences),
        "usage": finite(answer.usage),
        "timings_ms": finite(answer.timings_ms),
        "schema_version": JSON_SCHEMA_VERSION,
    }


def finite(value):
    """``value`` with every float that is not finite (inf, nan) as None, in dicts and
    lists too (a numpy float as a float)."""
    if isinstance(value, numbers.Real) and not isinstance(value, int):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value

"""What the programmatic faces offer, implemented once: the MCP server's tools
(``ui/mcp_server.py``) and the REST routes (``ui/rest.py``) both call :class:`Tools`.

Each operation checks its arguments (``k`` in 1..100, a question of at most
:data:`MAX_QUESTION_CHARS` characters, at most :data:`MAX_FILTER_VALUES` categories or
authors), calls the pipeline's public surface and returns
plain JSON-ready values: ``rag.answer_to_dict`` (the ``ask --json`` object),
``rag.hit_to_dict``, ``rag.paper_to_dict``. Failures are :class:`rag.AbstractaError`s
with a one-line message; each face turns them into its own kind of error.

Paper text is data: it is returned as stored (JSON escapes every control character), and
never interpreted. Nothing here imports a heavy library.
"""

from __future__ import annotations

from typing import Any

from rag import QuestionError

MAX_K = 100
MAX_QUESTION_CHARS = 10_000  # longer is refused (the core reads the first 2,000 anyway)


def check_k(k: int | None) -> int | None:
    """``k`` as given when it is 1..100 (None: the configured default); else QuestionError."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise QuestionError(f"k must be a whole number from 1 to {MAX_K} (got {k!r}).")
    return k


def check_text(text: str, what: str = "question") -> str:
    """A question or query of at most :data:`MAX_QUESTION_CHARS` characters (blank ones
    are refused by the core, with its own message)."""
    if not isinstance(text, str):
        raise QuestionError(f"The {what} must be text.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(f"The {what} is {len(text):,} characters long; at most "
                            f"{MAX_QUESTION_CHARS:,} are accepted.")
    return text


MAX_FILTER_VALUES = 20  # categories or authors in one request
MAX_FILTER_CHARS = 200  # one category or author name


def check_many(value: str | list[str] | None, what: str) -> tuple[str, ...]:
    """A filter given as one value or a list of them (any of them keeps a paper), each
    text of at most :data:`MAX_FILTER_CHARS` characters; else QuestionError."""
    values = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise QuestionError(f"{what} must be text or a list of texts.")
    if len(values) > MAX_FILTER_VALUES or any(len(v) > MAX_FILTER_CHARS for v in values):
        raise QuestionError(f"{what}: at most {MAX_FILTER_VALUES} values of at most "
                            f"{MAX_FILTER_CHARS} characters each.")
    return tuple(values)


Many = str | list[str] | None  # a category or author filter: one value or several


class Tools:
    """The operations, over one pipeline. ``ready`` (optional) is called first by each:
    it waits for a first-run ingest, or raises why the index did not open."""

    def __init__(self, pipeline, ready=None):
        self.pipeline = pipeline
        self._ready = ready or (lambda: None)

    def _filters(self, since: str | None, until: str | None, source: str | None = None,
                 category: Many = None, author: Many = None):
        from rag import parse_filters

        categories, authors = check_many(category, "category"), check_many(author, "author")
        try:
            return parse_filters(since, until, [source] if source else (), categories, authors)
        except ValueError as exc:
            raise QuestionError(str(exc)) from exc

    def search(self, query: str, k: int | None = None, since: str | None = None,
               until: str | None = None, source: str | None = None, category: Many = None,
               author: Many = None) -> list[dict[str, Any]]:
        """The papers that best match ``query``, best first (``ask search --json``)."""
        from rag import hit_to_dict

        query, k = check_text(query, "query"), check_k(k)
        filters = self._filters(since, until, source, category, author)
        self._ready()
        return [{**hit_to_dict(h), "dense": h.dense, "lexical": h.lexical}
                for h in self.pipeline.search(query, k, filters)]

    def ask(self, question: str, k: int | None = None, since: str | None = None,
            until: str | None = None, source: str | None = None, category: Many = None,
            author: Many = None) -> dict[str, Any]:
        """The answer with its citations and sources: the ``ask --json`` object."""
        from rag import answer_to_dict

        question, k = check_text(question), check_k(k)
        filters = self._filters(since, until, source, category, author)
        self._ready()
        return answer_to_dict(self.pipeline.answer(question, k=k, filters=filters))

    def paper(self, paper_id: str) -> dict[str, Any]:
        """One indexed paper's full record, by id (or exact title)."""
        from rag import paper_to_dict

        paper_id = check_text(paper_id, "paper id")
        self._ready()
        return paper_to_dict(self.pipeline.paper(paper_id))

    def similar(self, paper_id: str, k: int | None = None, since: str | None = None,
                until: str | None = None, source: str | None = None, category: Many = None,
                author: Many = None) -> list[dict[str, Any]]:
        """The papers nearest to one indexed paper, itself left out, best first."""
        from rag import hit_to_dict

        paper_id, k = check_text(paper_id, "paper id"), check_k(k)
        filters = self._filters(since, until, source, category, author)
        self._ready()
        return [{**hit_to_dict(h), "dense": h.dense}
                for h in self.pipeline.similar(paper_id, k, filters)]

"""arXiv metadata JSON Lines, as in the public arXiv metadata snapshot.

One JSON object per line with ``id``, ``title``, ``abstract`` and optionally
``authors``, ``categories``, ``update_date`` (``2023-05-01``). A JSON array of
such objects is accepted too. Titles and abstracts in the snapshot carry hard
line breaks and leading spaces; they are folded into single spaces.

:func:`records` reads JSON Lines one line at a time (an open file streams: memory does
not grow with the file); :func:`load` reads a whole text (JSON arrays, tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator

from rag.identity import normalize_arxiv_id, record_id
from rag.sources.records import LoadResult
from rag.types import Listing, Paper

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _text(value) -> str:
    if not isinstance(value, str):
        return ""
    # JSON escapes can carry lone surrogates ("\\ud800") that no UTF-8 file can hold.
    value = value.encode("utf-8", "replace").decode("utf-8")
    return " ".join(value.split())


def _categories(value) -> str:
    """Space-separated, as the arXiv snapshot writes them (a list is accepted too)."""
    if isinstance(value, list):
        value = " ".join(v for v in value if isinstance(v, str))
    return _text(value)


Skip = Callable[[str], None]  # told "file:line: reason" for each record left out


def _record(obj, source: str, line: int, skip: Skip) -> Paper | None:
    if not isinstance(obj, dict):
        skip(f"{source}:{line}: not a JSON object; skipped")
        return None
    title, abstract = _text(obj.get("title")), _text(obj.get("abstract"))
    if not title or not abstract:
        missing = "title" if not title else "abstract"
        skip(f"{source}:{line}: no {missing} (a non-empty string); skipped")
        return None
    raw_date = obj.get("update_date") or obj.get("date") or ""
    date = raw_date[:10] if isinstance(raw_date, str) and _ISO_DATE.match(raw_date) else ""
    authors = obj.get("authors")
    if isinstance(authors, list):
        authors = ", ".join(str(a) for a in authors)
    raw_id = obj.get("id")
    arxiv_id = normalize_arxiv_id(raw_id) if isinstance(raw_id, str) else None
    return Paper(
        title=title,
        abstract=abstract,
        listings=(Listing(date, source),),
        # A numeric id lost its trailing zeros in JSON (1706.03760 -> 1706.0376): use the
        # title. Any other id (a string or an integer) is the file's own: "jsonl:<id>".
        arxiv_id=arxiv_id,
        record_id=None if arxiv_id else record_id("jsonl", raw_id),
        authors=_text(authors),
        categories=_categories(obj.get("categories")),
        url=_text(obj.get("url")),
        where=f"{source}:{line}",
    )


def records(lines: Iterable[str], source: str, skip: Skip) -> Iterator[Paper]:
    """The papers of JSON Lines (one object per line, blank lines ignored), in order."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            msg = getattr(exc, "msg", None) or f"unreadable: {type(exc).__name__}"
            skip(f"{source}:{number}: malformed JSON ({msg}); skipped")
            continue
        paper = _record(obj, source, number, skip)
        if paper is not None:
            yield paper


def load(text: str, source: str):
    result = LoadResult()
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            result.skipped.append(f"{source}:{exc.lineno}: malformed JSON ({exc.msg}); skipped")
            return result
        except (RecursionError, ValueError) as exc:  # too deep, or a 5000-digit number
            result.skipped.append(f"{source}:1: unreadable JSON ({type(exc).__name__}); skipped")
            return result
        for number, obj in enumerate(items if isinstance(items, list) else [items], start=1):
            paper = _record(obj, source, number, result.skipped.append)
            if paper is not None:
                result.papers.append(paper)
        return result
    result.papers = list(records(text.split("\n"), source, result.skipped.append))
    return result

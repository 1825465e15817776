"""arXiv metadata JSON Lines, as in the public arXiv metadata snapshot.

One JSON object per line with ``id``, ``title``, ``abstract`` and optionally
``authors``, ``categories``, ``update_date`` (``2023-05-01``). A JSON array of
such objects is accepted too. Titles and abstracts in the snapshot carry hard
line breaks and leading spaces; they are folded into single spaces.
"""

from __future__ import annotations

import json
import re

from rag.identity import normalize_arxiv_id, record_id
from rag.types import Listing, Paper

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _text(value) -> str:
    if not isinstance(value, str):
        return ""
    # JSON escapes can carry lone surrogates ("\\ud800") that no UTF-8 file can hold.
    value = value.encode("utf-8", "replace").decode("utf-8")
    return " ".join(value.split())


def _record(obj, source: str, line: int, result) -> None:
    if not isinstance(obj, dict):
        result.skipped.append(f"{source}:{line}: not a JSON object; skipped")
        return
    title, abstract = _text(obj.get("title")), _text(obj.get("abstract"))
    if not title or not abstract:
        missing = "title" if not title else "abstract"
        result.skipped.append(f"{source}:{line}: no {missing} (a non-empty string); skipped")
        return
    raw_date = obj.get("update_date") or obj.get("date") or ""
    date = raw_date[:10] if isinstance(raw_date, str) and _ISO_DATE.match(raw_date) else ""
    authors = obj.get("authors")
    if isinstance(authors, list):
        authors = ", ".join(str(a) for a in authors)
    raw_id = obj.get("id")
    arxiv_id = normalize_arxiv_id(raw_id) if isinstance(raw_id, str) else None
    result.papers.append(Paper(
        title=title,
        abstract=abstract,
        listings=(Listing(date, source),),
        # A numeric id lost its trailing zeros in JSON (1706.03760 -> 1706.0376): use the
        # title. Any other id (a string or an integer) is the file's own: "jsonl:<id>".
        arxiv_id=arxiv_id,
        record_id=None if arxiv_id else record_id("jsonl", raw_id),
        authors=_text(authors),
        categories=_text(obj.get("categories")),
        url=_text(obj.get("url")),
        where=f"{source}:{line}",
    ))


def load(text: str, source: str):
    from rag.sources import LoadResult

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
            _record(obj, source, number, result)
        return result
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            msg = getattr(exc, "msg", None) or f"unreadable: {type(exc).__name__}"
            result.skipped.append(f"{source}:{number}: malformed JSON ({msg}); skipped")
            continue
        _record(obj, source, number, result)
    return result

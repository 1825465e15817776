"""CSV (or TSV) exports with ``title`` and ``abstract`` columns.

Optional columns: ``id`` (an arXiv id, or any id of the file's own: it becomes the
paper id as ``csv:<id>``), ``date``, ``authors``, ``url``. Column names are matched
case-insensitively; other columns are ignored.
"""

from __future__ import annotations

import csv
import io
import re

from rag.identity import normalize_arxiv_id, record_id
from rag.sources.listing import parse_listing_date
from rag.types import Listing, Paper

csv.field_size_limit(64 * 1024 * 1024)


def _dialect(text: str) -> str:
    """The delimiter the header line uses most: comma, tab, or semicolon (European Excel)."""
    first = text.split("\n", 1)[0]
    return max((",", "\t", ";"), key=first.count)


def _column_name(cell: str) -> str:
    """'  "Abstract" ' -> 'abstract' (spaces after the delimiter, stray quotes, case)."""
    return cell.strip().strip('"').strip().lower()


def _header(text: str) -> list[str]:
    first = text.split("\n", 1)[0]
    try:
        row = next(csv.reader([first], delimiter=_dialect(text)))
    except (csv.Error, StopIteration):
        return []
    return [_column_name(c) for c in row]


def looks_like_csv(text: str) -> bool:
    header = _header(text)
    return "title" in header and ("abstract" in header or "summary" in header)


def _date(raw: str) -> str:
    raw = raw.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        return raw[:10]
    return parse_listing_date(raw) or ""


def load(text: str, source: str):
    from rag.sources import LoadResult

    result = LoadResult()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(text))
    try:
        header = [_column_name(c) for c in next(reader)]
    except (StopIteration, csv.Error):
        return result
    col = {name: header.index(name) for name in header[::-1]}
    if "abstract" not in col and "summary" in col:
        col["abstract"] = col["summary"]
    if "title" not in col or "abstract" not in col:
        result.skipped.append(f"{source}:1: the header has no 'title' and 'abstract' columns")
        return result

    def cell(row: list[str], name: str) -> str:
        idx = col.get(name)
        return " ".join(row[idx].split()) if idx is not None and idx < len(row) else ""

    line = 1
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.skipped.append(f"{source}:{line}: malformed CSV ({exc}); skipped")
            break
        if not any(c.strip() for c in row):
            continue
        title, abstract = cell(row, "title"), cell(row, "abstract")
        if not title or not abstract:
            missing = "title" if not title else "abstract"
            result.skipped.append(f"{source}:{line}: empty {missing}; skipped")
            continue
        raw_id = cell(row, "id")
        result.papers.append(Paper(
            title=title,
            abstract=abstract,
            listings=(Listing(_date(cell(row, "date")), source),),
            arxiv_id=normalize_arxiv_id(raw_id),
            record_id=None if normalize_arxiv_id(raw_id) else record_id("csv", raw_id),
            authors=cell(row, "authors"),
            url=cell(row, "url"),
            where=f"{source}:{line}",
        ))
    return result

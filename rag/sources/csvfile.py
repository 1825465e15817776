"""CSV (or TSV) exports with ``title`` and ``abstract`` columns.

Optional columns: ``id`` (an arXiv id, or any id of the file's own: it becomes the
paper id as ``csv:<id>``), ``date``, ``authors``, ``url``, ``categories`` (or
``category``: arXiv categories separated by spaces, commas or semicolons). Column names
are matched case-insensitively; other columns are ignored.

:func:`records` reads rows from any iterable of lines (an open file streams: memory
does not grow with the file); :func:`load` reads a whole text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator

from rag.dates import parse_listing_date
from rag.identity import normalize_arxiv_id, record_id
from rag.sources.records import LoadResult
from rag.types import Listing, Paper

csv.field_size_limit(64 * 1024 * 1024)


def dialect(text: str) -> str:
    """The delimiter the header line uses most: comma, tab, or semicolon (European Excel)."""
    first = text.split("\n", 1)[0]
    return max((",", "\t", ";"), key=first.count)


def _column_name(cell: str) -> str:
    """'  "Abstract" ' -> 'abstract' (spaces after the delimiter, stray quotes, case)."""
    return cell.strip().strip('"').strip().lower()


def _header(text: str) -> list[str]:
    first = text.split("\n", 1)[0]
    try:
        row = next(csv.reader([first], delimiter=dialect(text)))
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


Skip = Callable[[str], None]  # told "file:line: reason" for each row left out


def count_rows(lines: Iterable[str], delimiter: str) -> int:
    """Rows with any text after the header, as :func:`records` reads them (a cheap pass
    for a progress total: nothing is kept)."""
    reader = csv.reader(lines, delimiter=delimiter)
    rows = 0
    try:
        for row in reader:
            rows += any(c.strip() for c in row)
    except csv.Error:  # records() stops at the same row
        pass
    return max(0, rows - 1)


def records(lines: Iterable[str], source: str, skip: Skip, delimiter: str) -> Iterator[Paper]:
    """The papers of a CSV's rows, in order (``lines``: newlines already ``\\n``)."""
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = [_column_name(c) for c in next(reader)]
    except (StopIteration, csv.Error):
        return
    col: dict[str, int] = {}
    for i, name in enumerate(header):  # the first column of a name wins (one pass)
        col.setdefault(name, i)
    if "abstract" not in col and "summary" in col:
        col["abstract"] = col["summary"]
    if "title" not in col or "abstract" not in col:
        skip(f"{source}:1: the header has no 'title' and 'abstract' columns")
        return

    def cell(row: list[str], name: str) -> str:
        idx = col.get(name)
        return " ".join(row[idx].split()) if idx is not None and idx < len(row) else ""

    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            skip(f"{source}:{line}: malformed CSV ({exc}); skipped")
            break
        if not any(c.strip() for c in row):
            continue
        title, abstract = cell(row, "title"), cell(row, "abstract")
        if not title or not abstract:
            missing = "title" if not title else "abstract"
            skip(f"{source}:{line}: empty {missing}; skipped")
            continue
        yield _paper(title, abstract, cell, row, source, line)


def _paper(title: str, abstract: str, cell, row: list[str], source: str, line: int) -> Paper:
    raw_id = cell(row, "id")
    arxiv_id = normalize_arxiv_id(raw_id)
    return Paper(
        title=title,
        abstract=abstract,
        listings=(Listing(_date(cell(row, "date")), source),),
        arxiv_id=arxiv_id,
        record_id=None if arxiv_id else record_id("csv", raw_id),
        authors=cell(row, "authors"),
        url=cell(row, "url"),
        # Stored as arXiv writes them, space-separated: "cs.CL, cs.AI" -> "cs.CL cs.AI".
        categories=" ".join(re.split(r"[\s,;]+", cell(row, "categories")
                                     or cell(row, "category"))).strip(),
        where=f"{source}:{line}",
    )


def load(text: str, source: str):
    result = LoadResult()
    result.papers = list(records(io.StringIO(text, newline=""), source, result.skipped.append,
                                 dialect(text)))
    return result

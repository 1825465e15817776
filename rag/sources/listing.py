"""Daily-paper listing pages, as saved from a "Daily Papers" web page.

The layout, paragraphs separated by blank lines::

    new / Get trending papers ... / Daily Papers      <- header lines, ignored
    Aug 13                                            <- listing date (no year)
    GQSA: Group Quantization and Sparsity ...         <- title: one short line
    Model compression has emerged as ...              <- abstract: one long paragraph
    GPipe: Efficient Training ...                     <- next title ...

A paragraph is a title when it is a single line of at most 300 characters and
the next paragraph is longer; a title with no abstract after it is skipped
with its line number.
"""

from __future__ import annotations

from rag.dates import parse_listing_date
from rag.sources.records import LoadResult
from rag.types import Listing, Paper

MAX_TITLE = 300


def _paragraphs(text: str) -> list[tuple[int, str]]:
    """(first line number, paragraph text) for each blank-line separated paragraph."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not buf:
                start = number
            buf.append(line.strip())
        elif buf:
            out.append((start, " ".join(buf) if len(buf) > 1 else buf[0]))
            buf = []
    if buf:
        out.append((start, " ".join(buf)))
    return out


def looks_like_listing(text: str) -> bool:
    paras = _paragraphs(text[:200_000])
    return any(parse_listing_date(p) for _, p in paras) and len(paras) >= 3


def _is_title(par: str) -> bool:
    return len(par) <= MAX_TITLE and parse_listing_date(par) is None


def load(text: str, source: str):
    result = LoadResult()
    paras = _paragraphs(text)
    first = next((i for i, (_, p) in enumerate(paras) if parse_listing_date(p)), None)
    if first is None:
        return result
    date = ""
    i = first
    while i < len(paras):
        line, par = paras[i]
        parsed = parse_listing_date(par)
        if parsed:
            date = parsed
            i += 1
            continue
        nxt = paras[i + 1][1] if i + 1 < len(paras) else None
        if not _is_title(par):
            result.skipped.append(f"{source}:{line}: a paragraph with no title before it; skipped")
            i += 1
            continue
        if nxt is None or parse_listing_date(nxt) or len(nxt) <= len(par) or len(nxt) < 80:
            result.skipped.append(f"{source}:{line}: '{par[:60]}' has no abstract; skipped")
            i += 1
            continue
        result.papers.append(Paper(
            title=par, abstract=nxt, listings=(Listing(date, source),), where=f"{source}:{line}",
        ))
        i += 2
    return result

"""Loaders: turn files into ``Paper`` records.

One module per format: ``listing`` (daily-paper listing pages, the bundled
corpus), ``arxiv`` (arXiv metadata snapshot JSON Lines) and ``csvfile`` (CSV or
TSV with ``title`` and ``abstract`` columns). :func:`load_path` sniffs the format
from the file's first bytes, so a file's name does not matter.

A record that cannot be used (no title, no abstract, bad JSON on one line) is
skipped with a reason naming ``file:line``; a file that holds no usable record,
or is not text, raises :class:`~rag.errors.SourceError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import SourceError
from rag.types import Paper

FORMATS = ("listing", "arxiv-jsonl", "csv")
MAX_FILE_BYTES = 2 * 1024**3
_SUFFIXES = {".txt", ".md", ".jsonl", ".json", ".ndjson", ".csv", ".tsv", ""}


@dataclass
class LoadResult:
    papers: list[Paper] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"
    format: str = ""


def read_text(path: Path) -> str:
    """The file's text, or a SourceError that says what is wrong with it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: no such file; check the path.") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it ({exc.strerror}).") from exc
    if size == 0:
        raise SourceError(f"{path}: the file is empty; nothing to ingest.")
    if size > MAX_FILE_BYTES:
        raise SourceError(f"{path}: {size / 1024**3:.1f} GB is too large; split it into parts.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it ({exc.strerror}).") from exc
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # spreadsheet "Unicode text" exports
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not valid UTF-16 text; re-save the file as UTF-8.") from exc
    if b"\x00" in data[:8192]:
        raise SourceError(
            f"{path}: this is a binary file, not a listing page, JSON Lines or CSV; "
            "export the papers as text first."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); re-save the file as UTF-8."
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def detect_format(text: str) -> str | None:
    """'arxiv-jsonl', 'csv', 'listing', or None when the text is none of them."""
    from rag.sources import csvfile, listing

    head = text.lstrip()[:4096]
    if head.startswith("{") or head.startswith("["):
        return "arxiv-jsonl"
    if csvfile.looks_like_csv(text):
        return "csv"
    if listing.looks_like_listing(text):
        return "listing"
    return None


def load_path(path: Path) -> LoadResult:
    """Load every paper in one file, whatever its format."""
    from rag.sources import arxiv, csvfile, listing

    text = read_text(path)
    if not text.strip():
        raise SourceError(f"{path}: the file holds only white space; nothing to ingest.")
    fmt = detect_format(text)
    if fmt is None:
        raise SourceError(
            f"{path}: not a format Abstracta reads; expected a daily listing page, arXiv "
            "metadata JSON Lines, or a CSV with 'title' and 'abstract' columns."
        )
    loader = {"listing": listing.load, "arxiv-jsonl": arxiv.load, "csv": csvfile.load}[fmt]
    result = loader(text, path.name)
    result.format = fmt
    # Reasons quote record text; keep each one a single printable line.
    result.skipped = [one_line(r) for r in result.skipped]
    if not result.papers:
        reasons = "; ".join(result.skipped[:2])
        raise SourceError(
            f"{path}: no usable paper in this {fmt} file ({reasons or 'no records'})."
        )
    return result


def one_line(text: str) -> str:
    """A message on one line, display-safe: escape sequences and control and bidi
    characters removed (not turned into visible junk), line breaks folded into spaces."""
    from rag.text import display_safe

    return " ".join(display_safe(text, newlines=False).split())


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files named directly, plus the readable files inside named folders (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and p.suffix.lower() in _SUFFIXES
            )
            if not found:
                raise SourceError(f"{path}: the folder holds no .txt, .jsonl or .csv file.")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder; check the path.")
    return files

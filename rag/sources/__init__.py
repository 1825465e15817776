"""Loaders: turn files into ``Paper`` records.

One module per format: ``listing`` (daily-paper listing pages, the bundled
corpus), ``arxiv`` (arXiv metadata snapshot JSON Lines) and ``csvfile`` (CSV or
TSV with ``title`` and ``abstract`` columns). :func:`load_path` sniffs the format
from the file's first bytes, so a file's name does not matter.

A record that cannot be used (no title, no abstract, bad JSON on one line) is
skipped with a reason naming ``file:line``; a file that holds no usable record,
or is not text, raises :class:`~rag.errors.SourceError`.

Streaming: :func:`open_path` checks a file and counts its records in one cheap pass
(no record kept), then yields the records lazily, as often as it is iterated. JSON
Lines and CSV are read line by line, so memory does not grow with the file (a 4 GB
arXiv snapshot reads like a small one); listing pages, JSON arrays and UTF-16
exports are small by nature and parsed whole (at most ``MAX_FILE_BYTES``).
:func:`load_path` is the whole-file convenience: every record in a list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import SourceError
from rag.sources.records import LoadResult
from rag.types import Paper

FORMATS = ("listing", "arxiv-jsonl", "csv")
MAX_FILE_BYTES = 2 * 1024**3  # for the formats parsed whole; JSON Lines and CSV stream
HEAD_BYTES = 256 * 1024  # what format sniffing reads (listing detection looks at 200,000 chars)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
_SUFFIXES = {".txt", ".md", ".jsonl", ".json", ".ndjson", ".csv", ".tsv", ""}


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


@dataclass
class RecordStream:
    """One checked file's records, read lazily (each iteration reads the file again).

    ``records``: how many the check counted (JSON Lines: non-blank lines; CSV: rows;
    parsed formats: usable records), a total for progress. ``skipped``: the reasons of
    the latest iteration, one display-safe line each.
    """

    path: Path
    format: str
    records: int
    skipped: list[str] = field(default_factory=list)
    papers: int = 0  # usable records yielded by the latest complete iteration
    streamed: bool = True  # False: parsed from the whole text
    delimiter: str = ","

    def __iter__(self) -> Iterator[Paper]:
        from rag.sources import arxiv, csvfile

        self.skipped, self.papers = [], 0
        if not self.streamed:
            result = _parse_whole(self.path)
            self.skipped = result.skipped
            yield from result.papers
            self.papers = len(result.papers)
            return
        skip = self._skip
        # Universal newlines turn \r\n and \r into \n, as read_text() does.
        with self.path.open(encoding="utf-8-sig", newline=None) as fh:
            if self.format == "csv":
                papers = csvfile.records(fh, self.path.name, skip, self.delimiter)
            else:
                papers = arxiv.records(fh, self.path.name, skip)
            n = 0
            for paper in papers:
                n += 1
                yield paper
        self.papers = n

    def _skip(self, reason: str) -> None:
        self.skipped.append(one_line(reason))

    def no_papers(self) -> SourceError:
        """The error for a file none of whose records could be used."""
        reasons = "; ".join(self.skipped[:2])
        return SourceError(f"{self.path}: no usable paper in this {self.format} file "
                           f"({reasons or 'no records'}).")


def open_path(path: Path) -> RecordStream:
    """Check a file (exists, text, UTF-8, a known format) and count its records, holding
    none of them; raises SourceError with what is wrong, as :func:`read_text` does."""
    from rag.sources import csvfile

    head = _head(path)
    if head[:2] in _UTF16_BOMS or head.lstrip(_UTF8_BOM + b" \t\r\n").startswith(b"["):
        return _whole_stream(path)
    if b"\x00" in head[:8192]:
        read_text(path)  # raises its binary-file error
    head_text = head.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    fmt = detect_format(head_text.replace("\r", "\n"))
    if fmt not in ("arxiv-jsonl", "csv"):
        return _whole_stream(path)
    delimiter = csvfile.dialect(head_text)
    records = _scan(path, fmt, delimiter)
    return RecordStream(path, fmt, records, delimiter=delimiter)


def _head(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size == 0:
            raise SourceError(f"{path}: the file is empty; nothing to ingest.")
        with path.open("rb") as fh:
            return fh.read(HEAD_BYTES)
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: no such file; check the path.") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it ({exc.strerror}).") from exc


def _whole_stream(path: Path) -> RecordStream:
    result = _parse_whole(path)
    if not result.papers:
        reasons = "; ".join(result.skipped[:2])
        raise SourceError(
            f"{path}: no usable paper in this {result.format} file ({reasons or 'no records'})."
        )
    return RecordStream(path, result.format, len(result.papers), streamed=False)


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, checked to be UTF-8 (SourceError at the first bad byte), with
    newlines made ``\\n``; one line in memory at a time."""
    offset, bom = 0, 0
    with path.open("rb") as fh:
        for raw in fh:
            if offset == 0 and raw.startswith(_UTF8_BOM):
                bom = len(_UTF8_BOM)  # utf-8-sig counts offsets after the mark
                raw = raw[bom:]
                offset = bom
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SourceError(
                    f"{path}: not UTF-8 text (bad byte at offset {offset - bom + exc.start}); "
                    "re-save the file as UTF-8.") from exc
            offset += len(raw)
            if "\r" not in line:
                yield line
                continue
            parts = line.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            yield from (part + "\n" for part in parts[:-1])
            if parts[-1]:
                yield parts[-1]


def _scan(path: Path, fmt: str, delimiter: str) -> int:
    """Records in a JSON Lines or CSV file (the cheap first pass), checking its text."""
    from rag.sources import csvfile

    content = False

    def checked() -> Iterator[str]:
        nonlocal content
        for line in _lines(path):
            content = content or bool(line.strip())
            yield line

    if fmt == "csv":
        records = csvfile.count_rows(checked(), delimiter)
        for _ in checked():  # a csv.Error stops the count; the rest must still be UTF-8
            pass
    else:
        records = sum(1 for line in checked() if line.strip())
    if not content:
        raise SourceError(f"{path}: the file holds only white space; nothing to ingest.")
    return records


def _parse_whole(path: Path) -> LoadResult:
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
    return result


def load_path(path: Path) -> LoadResult:
    """Load every paper in one file, whatever its format."""
    stream = open_path(path)
    result = LoadResult(list(stream), stream.skipped, stream.format)
    if not result.papers:
        raise stream.no_papers()
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

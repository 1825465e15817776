"""Reading files as a stream of records, in merge-ready batches; bad files and lines noted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rag.errors import SourceError
from rag.ingest.merge import own_id
from rag.ingest.report import IngestReport
from rag.sources import RecordStream, expand_paths, open_path
from rag.types import Paper

# Records read, deduplicated against the index and written per step of a streamed ingest:
# memory holds one batch (~10 MB of records at arXiv abstract lengths), whatever the file.
MERGE_RECORDS = 10_000


def open_files(paths: list[Path], report: IngestReport) -> list[RecordStream]:
    """The readable files, checked and their records counted (none held); files that
    cannot be read are noted in the report."""
    streams: list[RecordStream] = []
    for path in expand_paths(paths):
        report.files += 1
        try:
            streams.append(open_path(path))
        except SourceError as exc:
            report.failed_files.append(str(exc))
        except Exception as exc:  # a loader bug must not stop the other files
            report.failed_files.append(_loader_bug(path, exc))
    return streams


def _loader_bug(path: Path, exc: Exception) -> str:
    return f"{path}: could not be read ({type(exc).__name__}); please report this file."


def read_records(streams: list[RecordStream], report: IngestReport | None) -> Iterator[Paper]:
    """Every usable record of the files, read as needed. With ``report`` (the first
    pass) each file's records and skipped lines are counted, and a file that turns out
    to hold no usable record (or breaks its loader) is noted and dropped from ``streams``
    so a second pass does not read it again."""
    for stream in list(streams):
        try:
            yield from stream
        except Exception as exc:  # SourceError: the file changed since its check
            failed = str(exc) if isinstance(exc, SourceError) else _loader_bug(stream.path, exc)
        else:
            failed = str(stream.no_papers()) if not stream.papers else ""
        if report is None:
            continue
        if failed:
            report.failed_files.append(failed)
            streams.remove(stream)
        else:
            report.records += stream.papers
            report.skipped.extend(stream.skipped)


def file_batches(streams: list[RecordStream], report: IngestReport) -> Iterator[list[Paper]]:
    """The files' records in batches of up to MERGE_RECORDS, in :func:`merge`'s order:
    records with an id of their own first, then records known only by their title (so a
    listing and an arXiv record of one paper meet under the arXiv id, as in one batch).
    Files of at most MERGE_RECORDS records are one batch, read once; larger inputs are
    read twice (the second pass only when the first met title-only records)."""
    if sum(s.records for s in streams) <= MERGE_RECORDS:
        papers = list(read_records(streams, report))
        if papers:
            yield papers
        return
    title_only = 0

    def with_ids(papers: Iterator[Paper]) -> Iterator[Paper]:
        nonlocal title_only
        for p in papers:
            if own_id(p) is None:
                title_only += 1
            else:
                yield p

    yield from _chunked(with_ids(read_records(streams, report)))
    if title_only:
        yield from _chunked(p for p in read_records(streams, None) if own_id(p) is None)


def _chunked(papers: Iterator[Paper]) -> Iterator[list[Paper]]:
    batch: list[Paper] = []
    for p in papers:
        batch.append(p)
        if len(batch) >= MERGE_RECORDS:
            yield batch
            batch = []
    if batch:
        yield batch


def list_batches(papers: list[Paper]) -> Iterator[list[Paper]]:
    """Records already in memory (:func:`ingest_papers`), in :func:`file_batches`' order."""
    if len(papers) > MERGE_RECORDS:
        papers = sorted(papers, key=lambda p: own_id(p) is None)
    for start in range(0, len(papers), MERGE_RECORDS):
        yield papers[start:start + MERGE_RECORDS]


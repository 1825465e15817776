"""What an ingest run reports: the user's summary, and how far the run got."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Progress = Callable[[int, int], None]  # (papers done, papers to embed)


@dataclass
class IngestReport:
    files: int = 0
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"
    failed_files: list[str] = field(default_factory=list)  # one-line errors for whole files
    merges: list[str] = field(default_factory=list)  # "file:line into file:line: title"
    capped: list[str] = field(default_factory=list)  # "title (N chunks)", cut to the cap
    max_chunks: int = 0  # the cap (Settings.max_chunks_per_paper) when papers were cut

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged",
                 f"{len(self.skipped)} skipped"]
        text = (f"{', '.join(parts)} ({self.records} records from {self.files} file"
                f"{'s' if self.files != 1 else ''}; {self.chunks} chunks written)")
        if self.failed_files:
            text += f"; {len(self.failed_files)} file(s) not ingested"
        if self.merges:
            text += (f"; {len(self.merges)} record{'s' if len(self.merges) != 1 else ''} merged "
                     f"as the same paper as an earlier record: {_some(self.merges)}")
        if self.capped:
            text += (f"; {len(self.capped)} paper{'s' if len(self.capped) != 1 else ''} cut to "
                     f"the first {self.max_chunks} chunks: {_some(self.capped)}")
        return text


def _some(items: list[str], n: int = 3) -> str:
    """The first ``n`` items, display-safe, and how many more there are."""
    from rag.text import display_safe

    shown = "; ".join(display_safe(i, newlines=False) for i in items[:n])
    return shown + (f"; and {len(items) - n} more" if len(items) > n else "")


@dataclass
class Run:
    """How far an ingest got: papers committed (chunk #0 written) of papers to write."""

    done: int = 0
    total: int = 0

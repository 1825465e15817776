"""What a loader returns: its own module so that the format loaders
(:mod:`rag.sources.listing`, ``arxiv``, ``csvfile``) and the package that dispatches to
them (:mod:`rag.sources`) both import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.types import Paper


@dataclass
class LoadResult:
    papers: list[Paper] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"
    format: str = ""

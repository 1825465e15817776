"""What the UI's handlers share: the one pipeline, the index as it opens (a first run
indexes the bundled corpus while the page is served), answers as a stream of events, and
uploads saved and ingested.

One ``Service`` per server; every browser session keeps only its conversation.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from rag import AbstractaError, StoreError, display_safe

if TYPE_CHECKING:
    from rag import StoredPaper

log = logging.getLogger(__name__)

T = TypeVar("T")
_END = object()  # next()'s default: the stream has ended


@dataclass(frozen=True)
class Failed:
    """The answer failed: the one line the page shows instead."""

    message: str


def ticking(events: Iterator[T], every: float) -> Iterator[T | None]:
    """``events`` in order, with None whenever ``every`` seconds pass and none arrives.

    Each next event is awaited in a helper thread, with a timeout, so that this generator
    can yield the ticks while the stream blocks on the model's socket. Stopped early (the
    browser went away), the stream is closed as soon as its pending step returns; nobody
    waits for that here.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="abstracta-answer")
    step = None
    try:
        while True:
            step = pool.submit(next, events, _END)
            while True:
                try:
                    item = step.result(timeout=every)
                    break
                except TimeoutError:
                    if step.done():  # the stream's own TimeoutError, not the wait's
                        raise
                    yield None
            if item is _END:
                return
            yield cast(T, item)
    finally:
        if step is not None:  # closing a generator that is running in the helper fails
            step.add_done_callback(lambda _: getattr(events, "close", lambda: None)())
        pool.shutdown(wait=False)


class Service:
    """The pipeline plus what the UI remembers about the index."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self._ingest_lock = threading.Lock()
        self._papers: list[StoredPaper] | None = None
        # The first-run ingest runs while the page is served: (papers done, to embed) while
        # it runs, None otherwise; questions wait for `_opened` (is this a first run?).
        self.indexing: tuple[int, int] | None = None
        self.index_error = ""
        self.lock_note = ""  # who the first-run ingest waits for (another process writing)
        self._opened = threading.Event()
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None  # set by start()

    @property
    def uploads(self) -> Path:
        return self.settings.data_dir / "uploads"

    def start(self) -> threading.Thread:
        """Open the index in the background: on a first run ingest the bundled corpus
        (showing progress; questions meanwhile get "still indexing"), then warm the models
        and the lexical index so the first questions do not each build them. The page is
        served meanwhile, so a first run shows a page at once instead of nothing for the
        half minute the bundled corpus takes."""
        self._thread = threading.Thread(target=self._open, name="abstracta-open", daemon=True)
        self._thread.start()
        return self._thread

    def _open(self) -> None:
        try:
            if self.pipeline.needs_corpus():
                self.indexing = (0, 0)
                self._opened.set()
                self.pipeline.ensure_corpus(self._progress, on_lock_wait=self._lock_wait)
            self.indexing = None
            self._opened.set()
            if self.papers(refresh=True):
                self.pipeline.search("warm up the index", k=1)
        except AbstractaError as exc:
            self.index_error = str(exc)
        except Exception as exc:  # a bug: log it, say so on the page, keep serving
            log.exception("opening the index failed")
            self.index_error = f"Opening the index failed ({type(exc).__name__})."
        finally:
            self.indexing = None
            self._opened.set()
            self.ready.set()

    def _progress(self, done: int, total: int) -> None:
        self.indexing = (done, total)
        self.lock_note = ""  # the lock is ours once papers are counted

    def _lock_wait(self, message: str) -> None:
        self.lock_note = message

    def indexing_progress(self, wait: float = 30.0) -> str:
        """"N of M records" while the first-run ingest runs, else ""."""
        if self._thread is not None:  # started: wait until it knows whether it is a first run
            self._opened.wait(wait)
        progress = self.indexing
        if progress is None:
            return ""
        done, total = progress
        if self.lock_note:
            return display_safe(self.lock_note, newlines=False)
        return f"{done} of {total} records" if total else "reading the files"

    def still_indexing(self) -> str:
        """The reply to a question asked before the first-run ingest is done, else ""."""
        progress = self.indexing_progress()
        return (f"Still indexing the bundled sample corpus ({progress}); answers start as "
                "soon as it is in. Ask again in a moment.") if progress else ""

    def papers(self, refresh: bool = False) -> list[StoredPaper]:
        if self._papers is None or refresh:
            self._papers = self.pipeline.papers()
        return self._papers

    def source_names(self) -> list[str]:
        return sorted({s for p in self.papers() for s in p.sources})

    def status_line(self) -> str:
        """What the index is doing while it opens (also the starting page's line), or ""
        once it is open."""
        if self.index_error:
            return self.index_error
        progress = self.indexing_progress(0)
        if progress:
            return f"Indexing the bundled sample corpus: {progress}…"
        return "" if self.ready.is_set() else "Opening the index…"

    def health(self) -> dict:
        """``/api/v1/health``'s body: starting (with the first run's progress), ready, or
        the error that kept the index from opening."""
        if not self.ready.is_set():
            done, total = self.indexing or (0, 0)
            return {"status": "starting", "indexed": done, "total": total,
                    "message": self.status_line() or "Opening the index…"}
        if self.index_error:
            return {"status": "error", "error": self.index_error}
        return {"status": "ready", "papers": len(self.papers())}

    def status_html(self) -> str:
        from ui.render import status_html

        line = self.status_line()
        if line or not self.ready.is_set():
            return status_html(0, "", "", indexing=line or "Opening the index…")
        p = self.pipeline
        return status_html(len(self.papers()), p.embedder_name(), p.answerer_name)

    # --- questions -----------------------------------------------------------------------
    def filters(self, since: str, until: str, sources, categories=(), authors: str = ""):
        """The side panel's options as filters: ``authors`` is the box's text, names
        separated by ";" (a name has commas in no form users type it)."""
        from rag import parse_filters

        return parse_filters(since, until, sources, categories or (),
                             (authors or "").split(";"))

    def category_counts(self) -> dict[str, int]:
        """Each indexed arXiv category -> papers with it, most first (the facets: cheap)."""
        return dict(self.pipeline.searcher().categories())

    def stream_answer(self, question: str, *, k, filters, conversation, use_llm):
        """``pipeline.stream``'s events (:mod:`rag.llm.events`), with None each second
        none arrives (the page counts the wait for a model's first token: a CPU model
        reads the prompt for minutes), and a :class:`Failed` in place of an error."""
        events = self.pipeline.stream(question, k=k, filters=filters,
                                      conversation=conversation, use_llm=use_llm)
        try:
            yield from ticking(events, 1.0)
        except AbstractaError as exc:
            yield Failed(str(exc))
        except Exception as exc:  # a bug: log it, show one line, keep serving
            log.exception("answering failed")
            yield Failed(f"Something went wrong while answering ({type(exc).__name__}).")

    def related(self, paper_id: str, k: int, filters):
        """(the paper ``paper_id``, the ``k`` indexed papers nearest to it, itself left out,
        within ``filters``): the source cards' "Related papers". UnknownPaperError when
        the paper is no longer indexed."""
        paper = self.pipeline.paper(paper_id)
        return paper, self.pipeline.similar(paper.paper_id, k, filters)

    # --- ingest --------------------------------------------------------------------------
    def accept_upload(self, path: Path) -> tuple[Path | None, str]:
        """Copy one uploaded file into data_dir/uploads (or say why not)."""
        from ui.render import UPLOAD_SUFFIXES, safe_upload_name

        name = safe_upload_name(path.name)
        if Path(name).suffix.lower() not in UPLOAD_SUFFIXES:
            return None, (f"{name}: not accepted; upload a listing page (.txt), arXiv JSON Lines "
                          f"(.jsonl/.json) or CSV (.csv/.tsv).")
        size = path.stat().st_size
        cap = self.settings.ui_max_upload_mb
        if size > cap * 1024 * 1024:
            return None, (f"{name}: {size / 1024 / 1024:.1f} MB is over the {cap:g} MB upload "
                          "limit; split it, or ingest it with `ask ingest`.")
        self.uploads.mkdir(parents=True, exist_ok=True)
        dest = (self.uploads / name).resolve()
        if dest.parent != self.uploads.resolve():  # belt and braces: never leave uploads/
            return None, f"{name}: not a usable file name."
        try:
            shutil.copyfile(path, dest)
        except OSError as exc:  # a full disk above all: the whole upload stops, one line
            dest.unlink(missing_ok=True)
            reason = ("the disk is full: free some space and upload again"
                      if exc.errno == errno.ENOSPC else f"{exc.strerror or exc}")
            raise StoreError(f"Cannot save the upload {name}: {reason} (nothing indexed "
                             "is lost).") from exc
        return dest, ""

    def ingest(self, files, progress=None, on_lock_wait=None):
        """Ingest uploaded files; returns (report or None, problems list, error).

        ``error`` is the one-line message of what stopped the whole upload (a full disk,
        an index that cannot be written), shown on the Ingest tab like ``ask ingest``
        prints it; nothing indexed is lost. ``on_lock_wait`` is told who holds the index's
        write lock when another process is writing (the upload waits for it).
        """
        accepted, problems, report = [], [], None
        try:
            busy = self.still_indexing()
            if busy:
                return None, [], busy
            for f in files or []:
                dest, problem = self.accept_upload(Path(f))
                if dest is None:
                    problems.append(problem)
                else:
                    accepted.append(dest)
            if accepted:
                with self._ingest_lock:
                    report = self.pipeline.ingest(accepted, progress,
                                                  on_lock_wait=on_lock_wait)
                    self.papers(refresh=True)
                    if report.added or report.updated:  # rebuild the lexical index once
                        self.pipeline.search("warm up the index", k=1)
        except AbstractaError as exc:
            return None, problems, str(exc)
        return report, problems, ""

    def describe_ingest(self, report, problems, error: str = "") -> str:
        """The ingest outcome as HTML, with upload paths shortened to file names."""
        from ui.render import ingest_html

        prefix = str(self.uploads.resolve()) + os.sep
        papers = len(self.papers()) if report is not None else 0
        return ingest_html(report, problems, papers, lambda s: s.replace(prefix, ""), error)

"""Printing to a terminal: inert text, JSON, progress, the "waiting for the model" line,
and the first-use ingest that ``ask``, ``ask chat``, ``ask ui`` and ``ask eval`` start with.

The faces share these (``rag/cli.py``, ``ui/cli.py``, ``eval/cli.py``); the core never
prints, so none of this is in ``rag.__all__``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import click

from rag.text import display_safe, json_safe

PROGRESS_EVERY = 30.0  # seconds between progress lines when stderr is not a terminal


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print text that may hold paper text or file names, made inert first.

    Titles, abstracts and file names are untrusted: ESC[2J would clear the screen, OSC 8
    hide a link, OSC 0 set the window title, U+202E show "fdp.exe" as "exe.pdf". click
    strips CSI sequences only when the output is not a terminal, and OSC never, so every
    line goes through :func:`rag.text.display_safe` here.
    """
    click.echo(display_safe(message), err=err, nl=nl)


def echo_json(obj) -> None:
    """Print JSON; the control and bidi characters in its strings as \\u escapes."""
    click.echo(json_safe(json.dumps(obj, ensure_ascii=False, indent=2)))


class ProgressLines:
    """Progress for a log, nohup or CI, where a bar draws nothing: one line on stderr
    every ``every`` seconds, papers done of total, the rate and the time left.

    The rate is that of the papers done since the previous line (the first update only
    starts the clock), so reading the files and loading the model do not make the first
    ETA hours long. Worked example: 12,000 of 50,000 papers, 6,000 of them in the last
    30 s, is 200 papers/s, so the other 38,000 take 190 s:
    "Embedding: 12,000 of 50,000 papers (24%), 200.0 papers/s, ETA 3m10s".
    """

    def __init__(self, label: str, every: float, unit: str = "papers",
                 clock: Callable[[], float] = time.monotonic):
        self.label, self.every, self.unit, self.clock = label, every, unit, clock
        self.mark: tuple[float, int] | None = None  # (time, papers done) at the last line

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, done: int, total: int) -> None:
        now = self.clock()
        if self.mark is None or done < self.mark[1]:
            self.mark = (now, done)
            return
        if now - self.mark[0] < self.every:
            return
        rate = (done - self.mark[1]) / max(now - self.mark[0], 1e-9)
        self.mark = (now, done)
        line = f"{self.label}: {done:,} of {total:,} {self.unit}"
        if total:
            line += f" ({100 * done // total}%)"
        line += f", {rate:,.1f} {self.unit}/s"
        if rate > 0 and total >= done:
            line += f", ETA {duration((total - done) / rate)}"
        echo(line, err=True)

    def note(self, message: str) -> None:
        echo(message, err=True)


def duration(seconds: float) -> str:
    """42s, 3m10s, 2h05m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def run_stats(start: float) -> str:
    """Wall time since ``start`` and peak memory: this process's, and the largest of its
    finished worker processes' (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource

    unit = 1 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit / 2**20
    text = f"{time.monotonic() - start:.1f} s, peak memory {own:,.0f} MiB"
    return text + (f" (largest worker process {workers:,.0f} MiB)" if workers else "")


def progress_bar(label: str, every: float | None = None, unit: str = "papers", *,
                 clock: Callable[[], float] = time.monotonic):
    """Progress on stderr; returns (callback(done, total), context manager). The one
    progress helper of ``ask`` and the commands it forwards to (``ask eval``).

    A rich bar on a terminal; elsewhere :class:`ProgressLines`, a line every ``every``
    seconds (default :data:`PROGRESS_EVERY`) timed by ``clock``.
    """
    if not sys.stderr.isatty():
        lines = ProgressLines(label, PROGRESS_EVERY if every is None else every, unit, clock)
        return lines.update, lines
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=False)
    task = progress.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return update, progress


def bar_note(bar) -> Callable[[str], None]:
    """A line printed above a live progress bar (who the ingest is waiting for)."""
    if isinstance(bar, ProgressLines):
        return bar.note
    return lambda msg: bar.console.print(msg, markup=False, highlight=False)


def auto_ingest(pipeline, quiet: bool = False) -> None:
    """First use: ingest the bundled corpus, saying so on stderr (with a progress bar unless
    ``quiet``). ``ask``, ``ask search``, ``ask chat`` and ``ask eval`` start with it."""
    if pipeline.read_only_note:
        echo(f"Note: {pipeline.read_only_note}.", err=True)
    if not pipeline.needs_corpus():
        return
    unfinished = pipeline.unfinished_corpus()
    if unfinished:
        echo(f"Finishing the bundled sample corpus ({unfinished[0]} of {unfinished[1]} papers "
             f"indexed) in {pipeline.location}.", err=True)
    else:
        echo(f"No papers indexed yet: ingesting the bundled sample corpus into "
             f"{pipeline.location} (one time).", err=True)
    start = time.monotonic()
    if quiet:
        report = pipeline.ensure_corpus(on_lock_wait=lambda msg: echo(msg, err=True))
    else:
        update, bar = progress_bar("Indexing", unit="records")
        with bar:
            report = pipeline.ensure_corpus(update, on_lock_wait=bar_note(bar))
    if report is not None:
        echo(f"Indexed: {report.summary()} in {run_stats(start)}.", err=True)


class WaitingLine:
    """"Waiting for the model (12 s)…" on stderr, when it is a terminal, from the moment a
    request goes to the LLM until its first token: a model on a CPU can read the prompt
    for a minute or more, and the terminal should not look hung meanwhile."""

    def __init__(self) -> None:
        import threading

        self.enabled = sys.stderr.isatty()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """A request went out (a ``Waiting`` event of ``Pipeline.stream``); the first one
        counts."""
        import threading

        if self.enabled and self._thread is None and not self._done.is_set():
            self._thread = threading.Thread(target=self._run, args=(time.monotonic(),),
                                            daemon=True, name="abstracta-waiting")
            self._thread.start()

    def _run(self, t0: float) -> None:
        shown = False
        while not self._done.wait(1.0):  # nothing for the first second: fast servers
            sys.stderr.write(f"\rWaiting for the model ({time.monotonic() - t0:.0f} s)…")
            sys.stderr.flush()
            shown = True
        if shown:
            sys.stderr.write("\r\x1b[K")  # the line is cleared for the answer
            sys.stderr.flush()

    def stop(self) -> None:
        """The first token came (or the answer ended): clear the line, for good."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> WaitingLine:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

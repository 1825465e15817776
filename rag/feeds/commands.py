"""`ask sync` and `ask new` on a terminal: parse, run, print (rag/cli.py declares them).

A face, like rag/cli.py: the rest of rag.feeds never prints. Every line goes through
:func:`rag.console.echo` (feed text is untrusted: titles, server messages).
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import click

from rag.console import bar_note, echo, echo_json, progress_bar, run_stats
from rag.settings import Settings

NEW_SHOWN = 10  # new papers named after a sync (`ask new` lists them all)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def run_sync_command(settings: Settings, source: str | None, categories: list[str], *,
                     since: str | None, until: str | None, days: int | None,
                     every: str | None) -> None:
    """One sync (exit 1 when a page or a feed failed), or one every ``every`` until
    Ctrl-C (failures are reported and the loop goes on)."""
    interval = _interval(every) if every else None
    first, last = _day(since, "--since"), _day(until, "--until")
    while True:
        failed = _sync_once(settings, source, categories, first, last, days)
        if interval is None:
            if failed:
                sys.exit(1)
            return
        next_at = dt.datetime.now() + dt.timedelta(seconds=interval)
        echo(f"Next sync at {next_at:%Y-%m-%d %H:%M} (Ctrl-C stops).", err=True)
        time.sleep(interval)


def _sync_once(settings, source, categories, since, until, days) -> bool:
    from rag.feeds.plan import plan
    from rag.pipeline import Pipeline

    today = dt.datetime.now(dt.UTC).date()
    try:
        feeds = plan(settings, source, categories, since=since, until=until, days=days,
                     today=today)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    start = time.monotonic()
    pipeline = Pipeline(settings)
    update, bar = progress_bar("Indexing", unit="records")
    with bar:
        report = pipeline.sync(feeds, update, on_lock_wait=bar_note(bar))
    for reason in report.ingest.skipped:
        echo(f"skipped {reason}", err=True)
    for failure in report.failures:
        echo(f"Error: {failure}", err=True)
    if report.unreachable and not report.fetched:
        return True  # the one line above says it all; the index was not opened
    echo(f"{report.summary()} in {run_stats(start)}.")
    for name, stats in report.feeds.items():
        echo(f"  {name}: {stats['fetched']} fetched, {stats['added']} added")
    _print_new(report.new)
    if report.fetched:
        echo(f"Index: {pipeline.count_papers()} papers in {pipeline.location}")
    return bool(report.failures)


def _print_new(papers: list) -> None:
    from rag.feeds.new import newest_day

    if not papers:
        return
    echo(f"New ({len(papers)}):")
    for paper in sorted(papers, key=lambda p: (newest_day(p), p.paper_id), reverse=True)[
            :NEW_SHOWN]:
        echo(f"  {newest_day(paper) or '':10}  {paper.paper_id}  {paper.title}")
    if len(papers) > NEW_SHOWN:
        echo(f"  ... and {len(papers) - NEW_SHOWN} more: `ask new` lists them.")


def run_new_command(settings: Settings, since: str | None, categories: tuple[str, ...],
                    limit: int, as_json: bool) -> None:
    from rag.feeds.new import newest_day
    from rag.pipeline import Pipeline
    from rag.serialize import paper_to_dict

    pipeline = Pipeline(settings)
    first = _day(since, "--since")
    papers = pipeline.new_papers(first.isoformat() if first else None, categories, limit)
    if as_json:
        echo_json({"papers": [paper_to_dict(p) for p in papers],
                   "feeds": pipeline.sync_status()})
        return
    for name, status in pipeline.sync_status().items():
        echo(f"{name}: last sync {status.get('at', '?')}, {status.get('fetched', 0)} fetched, "
             f"{status.get('added', 0)} added" + (" (failed)" if status.get("error") else ""))
    if not papers:
        echo("No papers from `ask sync`" + (" match these filters." if since or categories
                                            else " yet; run `ask sync`."))
        return
    for paper in papers:
        cats = f"  [{paper.categories}]" if paper.categories else ""
        echo(f"{newest_day(paper):10}  {paper.paper_id}  {paper.title}{cats}")


def _day(text: str | None, option: str) -> dt.date | None:
    """A full date the user typed (2025-08-01), or a usage error."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a date; use 2025-08-01.",
                                 param_hint=option) from None


def _interval(text: str) -> float:
    """'6h' -> 21600.0 seconds; '30m', '90s', '1d'."""
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    try:
        seconds = float(value) * _UNITS[unit]
    except (KeyError, ValueError):
        raise click.BadParameter(f"'{text}' is not an interval; use 6h, 30m or 1d.",
                                 param_hint="--every") from None
    if not 60 <= seconds <= 7 * 86400:
        raise click.BadParameter("use an interval between 1m and 7d.", param_hint="--every")
    return seconds

"""The Library tab: the index's statistics, the feeds' last sync and the papers they
brought (`ask sync`), and a searchable table of its papers; and the page's view of the
index (status line, source filter), filled when a page loads and refreshed every second
while a first-run ingest runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ui import render

NEW_SHOWN = 10  # papers from the feeds shown under the statistics (`ask new` lists all)


@dataclass(frozen=True)
class LibraryTab:
    """The tab's components (Gradio's), for the handlers that fill them."""

    stats: Any
    query: Any
    refresh: Any
    table: Any


def build() -> LibraryTab:
    import gradio as gr

    with gr.Tab("Library", id="library"):
        stats = gr.HTML()
        with gr.Row():
            query = gr.Textbox(placeholder="Filter by title or source…",
                               show_label=False, scale=6)
            refresh = gr.Button("Refresh", size="sm", scale=1)
        table = gr.Dataframe(headers=["Title", "Listing dates", "Sources"],
                             datatype=["str", "str", "str"], interactive=False,
                             wrap=True, max_height=560, elem_id="library",
                             column_widths=["58%", "16%", "26%"])
    return LibraryTab(stats, query, refresh, table)


def rows(svc, query: str = "") -> list:
    """The table's rows (none until the index is open)."""
    return render.library_rows(svc.papers(), query) if svc.ready.is_set() else []


def stats_html(svc) -> str:
    """The statistics, or what the index is doing while it opens."""
    if not svc.ready.is_set():
        return svc.status_html()
    return render.stats_html(svc.pipeline.stats()) + feeds_html(svc)


def feeds_html(svc) -> str:
    """Each feed's last sync and the newest papers the feeds listed ("" before any sync).
    Feed text is untrusted: every value goes through ``render._text`` (inert, escaped)."""
    status = svc.pipeline.sync_status()
    if not status:
        return ""
    text = render._text
    feeds = "".join(
        f"<li>{text(name)}: last sync {text(str(s.get('at', '?')))}, {int(s.get('fetched', 0))} "
        f"fetched, {int(s.get('added', 0))} added"
        f"{' (failed: ' + text(s['error']) + ')' if s.get('error') else ''}</li>"
        for name, s in status.items())
    new = svc.pipeline.new_papers(limit=NEW_SHOWN)
    papers = "".join(f"<li>{text(p.title)} <small>{text(', '.join(p.sources[-2:]))}</small></li>"
                     for p in new)
    return (f'<div class="stats feeds"><p><b>Feeds</b> (<code>ask sync</code>)</p><ul>{feeds}</ul>'
            + (f"<p>New papers</p><ol>{papers}</ol>" if papers else "") + "</div>")


def sources_update(svc):
    """The side panel's source filter: the indexed files once the index is open."""
    import gradio as gr

    return gr.update(choices=svc.source_names() if svc.ready.is_set() else [])


def wire(svc, tab: LibraryTab, status, sources, timer, demo) -> None:
    """Filtering and refreshing the table; the page's view of the index on load and on
    each tick of ``timer`` until the index is open."""
    import gradio as gr

    def library(query: str = ""):
        return rows(svc, query)

    def show_index(query: str = ""):
        return stats_html(svc), rows(svc, query), svc.status_html(), sources_update(svc)

    def refresh_library(query: str = ""):
        if svc.ready.is_set():
            svc.papers(refresh=True)
        return show_index(query)

    def tick(query: str = ""):
        """While the index opens (a first-run ingest): progress; then everything, once."""
        if not svc.ready.is_set():
            return stats_html(svc), gr.skip(), svc.status_html(), gr.skip(), gr.Timer(active=True)
        return (*show_index(query), gr.Timer(active=False))

    tab.query.change(library, tab.query, tab.table, api_visibility="private", queue=False)
    tab.refresh.click(refresh_library, tab.query, [tab.stats, tab.table, status, sources],
                      api_visibility="private")
    shown_index = [tab.stats, tab.table, status, sources, timer]
    timer.tick(tick, tab.query, shown_index, api_visibility="private", queue=False)
    demo.load(tick, tab.query, shown_index, api_visibility="private", queue=False)

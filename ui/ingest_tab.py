"""The Ingest tab: files uploaded, ingested with progress on the page, the outcome shown,
and the library and source filter refreshed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag import display_safe
from ui import library_tab
from ui.library_tab import LibraryTab


@dataclass(frozen=True)
class IngestTab:
    """The tab's components (Gradio's), for the handler wired to them."""

    files: Any
    button: Any
    result: Any


def build(settings) -> IngestTab:
    import gradio as gr

    with gr.Tab("Ingest", id="ingest"):
        gr.Markdown(
            f"Add papers from a daily **listing page** (.txt), **arXiv metadata JSON "
            f"Lines** (.jsonl/.json) or a **CSV/TSV** with `title` and `abstract` columns "
            f"(optional `id`, `date`, `authors`, `url`). Up to "
            f"{settings.ui_max_upload_mb:g} MB per file. Re-uploading is safe: unchanged "
            f"papers are skipped.")
        # No file_types: Gradio checks them itself and answers a refused file (an .exe
        # posted past the page's chooser) with a traceback in the server log; the
        # service refuses it instead, naming the file and the formats on the page.
        files = gr.File(file_count="multiple", type="filepath", label="Files to ingest",
                        elem_id="upload")
        button = gr.Button("Ingest", variant="primary", elem_id="ingest-btn")
        result = gr.HTML(elem_id="ingest-result")
    return IngestTab(files, button, result)


def wire(svc, tab: IngestTab, library: LibraryTab, status, sources) -> None:
    """One upload at a time; the outcome, then the index as it now is."""
    import gradio as gr

    def do_ingest(files, progress=gr.Progress()):
        progress(0, desc="Reading files")

        def on_progress(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"Embedding papers {done}/{total}")

        def on_lock_wait(message: str) -> None:  # another process is writing the index
            progress(0, desc=display_safe(message, newlines=False))

        report, problems, error = svc.ingest(files, on_progress, on_lock_wait)
        return (svc.describe_ingest(report, problems, error), None,
                library_tab.stats_html(svc), library_tab.rows(svc, ""), svc.status_html(),
                gr.update(choices=svc.source_names()))

    tab.button.click(do_ingest, tab.files,
                     [tab.result, tab.files, library.stats, library.table, status, sources],
                     api_visibility="private", concurrency_limit=1)

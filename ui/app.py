"""The browser chat: Gradio Blocks over one shared :class:`rag.Pipeline`.

Tabs: Chat (streamed answers with linked citations and source cards, follow-up
questions, filters), Library (index statistics and a searchable paper table) and
Ingest (upload files). One named API endpoint, ``/ask``, answers a question
with the ``ask --json`` object for scripts (see ``ui/README.md``).

Every browser session has its own conversation (``gr.State``); the pipeline and
its backends are shared. Nothing is built at import time: :func:`serve` builds
and launches.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rag import AbstractaError, SettingsError, StoreError, display_safe

if TYPE_CHECKING:
    from rag import StoredPaper

log = logging.getLogger(__name__)

CONCURRENCY = 8  # questions answered at once; a slow LLM call holds one slot, not the queue
EXAMPLES = [
    "Which paper combines group quantization with structured sparsity?",
    "How many computer tasks are in the OSWorld benchmark?",
    "Which papers introduce benchmarks for agents that operate apps on mobile phones?",
    "Which work reformulates attention as a recurrent network?",
]
OFFLINE, LLM = "Offline (extractive)", "LLM"

CSS = """
.gradio-container { max-width: 1320px !important; }
#header h1 { margin: 0; font-size: 1.6rem; }
#header .tagline { color: var(--body-text-color-subdued); margin-top: 2px; }
#status { font-size: 0.85rem; color: var(--body-text-color-subdued); }
#status code { font-size: 0.8rem; }
sup.cite a { text-decoration: none; font-weight: 600; padding: 0 1px;
  color: var(--color-accent); }
sup.cite a:hover { text-decoration: underline; }
.sources { margin-top: 10px; border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
.sources-label { font-size: 0.75rem; text-transform: uppercase; letter-spacing: .06em;
  color: var(--body-text-color-subdued); margin-bottom: 6px; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
  margin: 6px 0; background: var(--background-fill-secondary); scroll-margin-top: 12px; }
.src-card:target { outline: 2px solid var(--color-accent); }
.src-head { font-weight: 600; }
.src-n { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 4px;
  background: var(--color-accent); color: white; font-size: 0.8rem; margin-right: 4px; }
.paper-link { font-weight: 400; font-size: 0.85rem; margin-left: 6px; }
.src-meta { font-size: 0.8rem; color: var(--body-text-color-subdued); margin: 2px 0 4px; }
.src-abstract { font-size: 0.85rem; line-height: 1.45; max-height: 11em; overflow-y: auto; }
.src-abstract mark { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
.dark .src-abstract mark { background: #854d0e; }
details.also { margin-top: 6px; font-size: 0.85rem; }
.answer-foot, .answer-note { font-size: 0.75rem; color: var(--body-text-color-subdued);
  margin-top: 6px; }
.answer-body p { margin: 0 0 0.6em; }
.answer-pending, .indexing { color: var(--body-text-color-subdued); font-style: italic; }
.ingest-error { color: var(--error-text-color, #b91c1c); font-weight: 600; }
/* Library: the title column wraps instead of pushing dates and sources off screen. */
#library table { table-layout: fixed; width: 100%; }
.answer-error { color: var(--error-text-color, #b91c1c); }
.cursor { animation: blink 1s steps(2, start) infinite; }
@keyframes blink { to { visibility: hidden; } }
"""


# --- serving rules ----------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


def resolve_auth(host: str, settings) -> tuple[str, str] | None:
    """The (user, password) the UI requires, or None on loopback without one.

    Listening beyond this machine without a password would hand the index (and
    the LLM key's budget) to the whole network, so it is refused.
    """
    raw = settings.ui_auth.get_secret_value() if settings.ui_auth else ""
    if raw:
        user, sep, password = raw.partition(":")
        if not sep or not user or not password:
            raise SettingsError("Setting ABSTRACTA_UI_AUTH must look like 'user:password'.")
        return user, password
    if not is_loopback(host):
        raise SettingsError(
            f"Refusing to serve the UI on {host} without a password: set "
            "ABSTRACTA_UI_AUTH=user:password (or ui_auth in .env), or use --host 127.0.0.1.")
    return None


def _quiet_gradio() -> None:
    """Gradio must not phone home: analytics off before it is imported."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def theme():
    """Gradio's default look with system fonts only (no font files fetched from anywhere)."""
    import gradio as gr

    return gr.themes.Default(
        primary_hue="indigo", secondary_hue="amber", neutral_hue="slate",
        font=[gr.themes.Font("system-ui"), "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), "SFMono-Regular", "Menlo", "monospace"],
    )


# --- the service the handlers share ------------------------------------------------------

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

    def status_html(self) -> str:
        from ui.render import status_html

        line = self.status_line()
        if line or not self.ready.is_set():
            return status_html(0, "", "", indexing=line or "Opening the index…")
        p = self.pipeline
        return status_html(len(self.papers()), p.embedder_name(), p.answerer_name)

    # --- questions -----------------------------------------------------------------------
    def filters(self, since: str, until: str, sources):
        from rag import parse_filters

        return parse_filters(since, until, sources)

    def stream_answer(self, question: str, *, k, filters, conversation, use_llm):
        """Yield ("token", text) while the answer streams, then ("answer", Answer) or
        ("error", message); ("waiting", seconds) every second from the moment a request
        goes to the LLM until its first token (a CPU model reads the prompt for minutes).
        The pipeline runs in a worker thread so tokens reach the browser as they come."""
        tokens: queue.Queue = queue.Queue()
        done, waiting = object(), object()
        result: dict = {}

        def work() -> None:
            try:
                result["answer"] = self.pipeline.answer(
                    question, k=k, filters=filters, conversation=conversation,
                    use_llm=use_llm, on_token=tokens.put,
                    on_llm_wait=lambda: tokens.put(waiting))
            except AbstractaError as exc:
                result["error"] = str(exc)
            except Exception as exc:  # a bug: log it, show one line, keep serving
                log.exception("answering failed")
                result["error"] = f"Something went wrong while answering ({type(exc).__name__})."
            finally:
                tokens.put(done)

        threading.Thread(target=work, name="abstracta-answer", daemon=True).start()
        since: float | None = None  # a request went to the LLM; no token yet
        while True:
            try:
                item = tokens.get(timeout=None if since is None else 1.0)
            except queue.Empty:  # only with a timeout: a request is out, no token yet
                if since is not None:
                    yield "waiting", time.monotonic() - since
                continue
            if item is waiting:
                since = since or time.monotonic()
                yield "waiting", time.monotonic() - since
                continue
            since = None
            batch = []
            while item is not done:
                if item is not waiting:
                    batch.append(item)
                try:  # send what has accumulated as one update
                    item = tokens.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield "token", "".join(batch)
            if item is done:
                break
        if "answer" in result:
            yield "answer", result["answer"]
        else:
            yield "error", result.get("error", "No answer.")

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


# --- the Blocks --------------------------------------------------------------------------

def build_app(pipeline, svc: Service | None = None):
    """The Gradio Blocks for this pipeline (not launched). Builds nothing that needs the
    index: what shows it (status, library, source filter) is filled in when a page loads,
    and refreshed every second while a first-run ingest runs."""
    _quiet_gradio()
    import gradio as gr

    from rag import Conversation, answer_to_dict
    from ui import render

    svc = svc or Service(pipeline)
    settings = pipeline.settings

    def new_session() -> dict:
        return {"conversation": Conversation(), "messages": [], "turn": 0}

    def respond(question, session, k, since, until, sources, mode):
        session = session or new_session()
        question = (question or "").strip()
        if not question:
            yield session["messages"], "", session
            return
        shown = session["messages"] + [{"role": "user",
                                         "content": render.question_html(question)}]
        busy = svc.still_indexing()
        if busy:  # a first run: not an error, the answer comes once the corpus is in
            yield shown + [{"role": "assistant", "content": render.pending_html(busy)}], "", session
            return
        try:
            filters = svc.filters(since, until, sources)
        except ValueError as exc:
            session["messages"] = shown + [{"role": "assistant",
                                            "content": render.error_html(str(exc))}]
            yield session["messages"], "", session
            return
        use_llm = (mode == LLM) if settings.llm_configured else None
        session["turn"] += 1
        turn = session["turn"]
        thinking = render.pending_html("Searching the papers…")
        yield shown + [{"role": "assistant", "content": thinking}], "", session
        partial = ""
        for kind, value in svc.stream_answer(question, k=int(k), filters=filters,
                                             conversation=session["conversation"],
                                             use_llm=use_llm):
            if kind == "token":
                partial += value
                yield (shown + [{"role": "assistant", "content": render.streaming_html(partial)}],
                       "", session)
            elif kind == "waiting":
                note = f"Waiting for the model ({value:.0f} s)…"
                yield (shown + [{"role": "assistant",
                                 "content": f'<span class="answer-pending">{note}</span>'}],
                       "", session)
            elif kind == "answer":
                content = render.answer_html(value, turn)
                session["messages"] = shown + [{"role": "assistant", "content": content}]
                yield session["messages"], "", session
            else:
                session["messages"] = shown + [{"role": "assistant",
                                                "content": render.error_html(value)}]
                yield session["messages"], "", session

    def reset():
        return [], "", new_session()

    def example_text(evt) -> str:
        return evt.value["text"]

    # Gradio finds the event-data parameter by its annotation; set it as a real class
    # (this module's annotations are strings, which Gradio cannot resolve here).
    example_text.__annotations__ = {"evt": gr.SelectData, "return": str}

    def ask(question: str, k: int = 5) -> dict:
        """Answer one question from the indexed papers; returns the `ask --json` object."""
        busy = svc.still_indexing()
        if busy:
            raise gr.Error(busy, print_exception=False)
        try:
            answer = pipeline.answer(question, k=int(k))
        except AbstractaError as exc:
            # A user's error, answered in one line: no traceback on the server's terminal.
            raise gr.Error(str(exc), print_exception=False) from None
        return answer_to_dict(answer)

    def library(query: str = ""):
        return render.library_rows(svc.papers(), query) if svc.ready.is_set() else []

    def stats() -> str:
        if not svc.ready.is_set():
            return svc.status_html()
        return render.stats_html(pipeline.stats())

    def show_index(query: str = ""):
        return (stats(), library(query), svc.status_html(),
                gr.update(choices=svc.source_names() if svc.ready.is_set() else []))

    def refresh_library(query: str = ""):
        if svc.ready.is_set():
            svc.papers(refresh=True)
        return show_index(query)

    def tick(query: str = ""):
        """While the index opens (a first-run ingest): progress; then everything, once."""
        if not svc.ready.is_set():
            return stats(), gr.skip(), svc.status_html(), gr.skip(), gr.Timer(active=True)
        return (*show_index(query), gr.Timer(active=False))

    def do_ingest(files, progress=gr.Progress()):
        progress(0, desc="Reading files")

        def on_progress(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"Embedding papers {done}/{total}")

        def on_lock_wait(message: str) -> None:  # another process is writing the index
            progress(0, desc=display_safe(message, newlines=False))

        report, problems, error = svc.ingest(files, on_progress, on_lock_wait)
        return (svc.describe_ingest(report, problems, error), None, stats(), library(""),
                svc.status_html(), gr.update(choices=svc.source_names()))

    with gr.Blocks(title="Abstracta", analytics_enabled=False) as demo:
        session = gr.State(None)
        with gr.Row(elem_id="header"):
            gr.HTML('<h1>Abstracta</h1><div class="tagline">Ask questions of research-paper '
                    'abstracts; every claim cites the papers it comes from.</div>')
        status = gr.HTML(svc.status_html(), elem_id="status")
        timer = gr.Timer(1.0)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=4):
                    # HTML, not Markdown: no autolinks from paper text, escaped once.
                    chatbot = gr.Chatbot(
                        elem_id="chat", height=620, show_label=False, latex_delimiters=[],
                        render_markdown=False,
                        feedback_options=None, buttons=["copy"], layout="panel",
                        placeholder="**Ask about the indexed papers.** Answers cite their "
                                    "sources as [n]; click a number to jump to the paper.",
                        examples=[{"text": q} for q in EXAMPLES])
                    with gr.Row():
                        box = gr.Textbox(placeholder="Ask a question, or a follow-up…",
                                         show_label=False, scale=8, autofocus=True,
                                         elem_id="question", max_lines=4, submit_btn=False)
                        send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                with gr.Column(scale=1, min_width=250):
                    clear = gr.Button("New conversation", size="sm", variant="secondary",
                                      elem_id="new-chat")
                    gr.Markdown("#### Search options")
                    k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Papers (k)")
                    since = gr.Textbox(label="Listed on or after",
                                       placeholder="2024-08-13, Aug 13 or 08-13")
                    until = gr.Textbox(label="Listed on or before", placeholder="Aug 20")
                    sources = gr.Dropdown([], multiselect=True,
                                          label="Sources", info="Empty: all files")
                    mode = gr.Radio(
                        [OFFLINE, LLM], label="Answerer",
                        value=LLM if settings.use_llm else OFFLINE,
                        visible=settings.llm_configured,
                        info=f"LLM: {settings.llm_model}" if settings.llm_configured else None)
                    if not settings.llm_configured:
                        gr.Markdown("Answerer: offline (extractive). Set an OpenAI-compatible "
                                    "key or base URL to use an LLM.", elem_id="status")
            with gr.Tab("Library", id="library"):
                stats_md = gr.HTML()
                with gr.Row():
                    lib_query = gr.Textbox(placeholder="Filter by title or source…",
                                           show_label=False, scale=6)
                    lib_refresh = gr.Button("Refresh", size="sm", scale=1)
                table = gr.Dataframe(headers=["Title", "Listing dates", "Sources"],
                                     datatype=["str", "str", "str"], interactive=False,
                                     wrap=True, max_height=560, elem_id="library",
                                     column_widths=["58%", "16%", "26%"])
            with gr.Tab("Ingest", id="ingest"):
                gr.Markdown(
                    f"Add papers from a daily **listing page** (.txt), **arXiv metadata JSON "
                    f"Lines** (.jsonl/.json) or a **CSV/TSV** with `title` and `abstract` columns "
                    f"(optional `id`, `date`, `authors`, `url`). Up to "
                    f"{settings.ui_max_upload_mb:g} MB per file. Re-uploading is safe: unchanged "
                    f"papers are skipped.")
                files = gr.File(file_count="multiple", file_types=list(render.UPLOAD_SUFFIXES),
                                type="filepath", label="Files to ingest", elem_id="upload")
                ingest_btn = gr.Button("Ingest", variant="primary", elem_id="ingest-btn")
                ingest_out = gr.HTML(elem_id="ingest-result")

        inputs = [box, session, k, since, until, sources, mode]
        outputs = [chatbot, box, session]
        box.submit(respond, inputs, outputs, api_visibility="private")
        send.click(respond, inputs, outputs, api_visibility="private")
        chatbot.example_select(example_text, None, box,
                               api_visibility="private", queue=False).then(
            respond, inputs, outputs, api_visibility="private")
        clear.click(reset, None, outputs, api_visibility="private", queue=False)
        chatbot.clear(reset, None, outputs, api_visibility="private", queue=False)
        lib_query.change(library, lib_query, table, api_visibility="private", queue=False)
        lib_refresh.click(refresh_library, lib_query, [stats_md, table, status, sources],
                          api_visibility="private")
        ingest_btn.click(do_ingest, files,
                         [ingest_out, files, stats_md, table, status, sources],
                         api_visibility="private", concurrency_limit=1)
        shown_index = [stats_md, table, status, sources, timer]
        timer.tick(tick, lib_query, shown_index, api_visibility="private", queue=False)
        demo.load(tick, lib_query, shown_index, api_visibility="private", queue=False)
        gr.api(ask, api_name="ask")
    return demo


def serve(settings, host: str | None = None, port: int | None = None, *, pipeline=None,
          service: Service | None = None, before_launch=None, block: bool = True,
          quiet: bool = False):
    """Check the serving rules, build the app and launch it. Returns (demo, url).

    The page is served before the index is opened: :meth:`Service.start` runs after
    the launch (a first run indexes the bundled corpus meanwhile, with progress on the
    page), unless ``service`` is passed already started. ``before_launch`` runs just
    before Gradio binds the port (``ask ui`` closes its starting page there).
    ``block=False`` returns once the server is listening (tests use it).
    """
    from ui.placeholder import check_port

    host = host or settings.ui_host
    port = port or settings.ui_port
    auth = resolve_auth(host, settings)
    if service is None:
        check_port(host, port)  # one line, before anything heavy loads
        if pipeline is None:
            from rag import Pipeline

            pipeline = Pipeline(settings)
    svc = service or Service(pipeline)
    demo = build_app(svc.pipeline, svc)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    if before_launch is not None:
        before_launch()
    _, url, _ = demo.launch(
        server_name=host, server_port=port, auth=auth, prevent_thread_lock=True,
        quiet=quiet, share=False, theme=theme(), css=CSS, footer_links=["api"],
        max_file_size=int(settings.ui_max_upload_mb * 1024 * 1024), show_error=False,
        enable_monitoring=False, run_history=False, mcp_server=False, ssr_mode=False,
        inbrowser=False, auth_message="Abstracta: sign in with the ABSTRACTA_UI_AUTH user.")
    if service is None:
        svc.start()
    if block:
        demo.block_thread()
    return demo, url

"""The browser chat: Gradio Blocks over one shared :class:`rag.Pipeline`, its serving
rules (loopback, or a password), and the launch.

Tabs, each built by its own module: Chat (``ui/chat_tab.py``: streamed answers with
linked citations and source cards, follow-up questions) with the search options beside
it (``ui/side_panel.py``), Library (``ui/library_tab.py``: index statistics and a
searchable paper table) and Ingest (``ui/ingest_tab.py``: upload files). What their
handlers share is a :class:`ui.service.Service`. One named API endpoint, ``/ask``,
answers a question with the ``ask --json`` object for scripts (see ``ui/README.md``); the
JSON REST API (``ui/rest.py``) is mounted at ``/api/v1`` on the same server.

Every browser session has its own conversation (``gr.State``); the pipeline and
its backends are shared. Nothing is built at import time: :func:`serve` builds
and launches.
"""

from __future__ import annotations

import ipaddress
import os

from rag import AbstractaError, SettingsError
from ui.service import Service
from ui.tools import check_k

CONCURRENCY = 8  # questions answered at once; a slow LLM call holds one slot, not the queue

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


# --- the Blocks --------------------------------------------------------------------------

HEADER = ('<h1>Abstracta</h1><div class="tagline">Ask questions of research-paper '
          'abstracts; every claim cites the papers it comes from.</div>')


def build_app(pipeline, svc: Service | None = None):
    """The Gradio Blocks for this pipeline (not launched). Builds nothing that needs the
    index: what shows it (status, library, source filter) is filled in when a page loads,
    and refreshed every second while a first-run ingest runs."""
    _quiet_gradio()
    import gradio as gr

    from ui import chat_tab, ingest_tab, library_tab, side_panel

    svc = svc or Service(pipeline)
    with gr.Blocks(title="Abstracta", analytics_enabled=False) as demo:
        session = gr.State(None, delete_callback=chat_tab.forget_downloads)
        with gr.Row(elem_id="header"):
            gr.HTML(HEADER)
        status = gr.HTML(svc.status_html(), elem_id="status")
        timer = gr.Timer(1.0)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                chat = chat_tab.build()
                panel = side_panel.build(svc.settings)
            library = library_tab.build()
            ingest = ingest_tab.build(svc.settings)
        chat_tab.wire(svc, chat, panel, session)
        side_panel.wire(svc, panel)
        library_tab.wire(svc, library, status, panel.sources, timer, demo)
        ingest_tab.wire(svc, ingest, library, status, panel.sources)
        gr.api(ask_endpoint(svc), api_name="ask")
    return demo


def ask_endpoint(svc):
    """The named API endpoint /ask (gradio_client; see ui/README.md)."""
    import gradio as gr

    from rag import answer_to_dict

    def ask(question: str, k: int = 5) -> dict:
        """Answer one question from the indexed papers; returns the `ask --json` object."""
        busy = svc.still_indexing()
        if busy:
            raise gr.Error(busy, print_exception=False)
        try:
            # The CLI's range (1..100, ui.tools.check_k): k=-5 or k=1000 is refused in
            # one line, not answered with some other number of sources.
            whole = int(k) if isinstance(k, float) and float(k).is_integer() else k
            answer = svc.pipeline.answer(question, k=check_k(whole))
        except AbstractaError as exc:
            # A user's error, answered in one line: no traceback on the server's terminal.
            raise gr.Error(str(exc), print_exception=False) from None
        return answer_to_dict(answer)

    return ask


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
    from starlette.routing import Mount

    from ui.rest import PREFIX, build_api

    rest = Mount(PREFIX, build_api(svc, auth))  # first among the app's routes
    if before_launch is not None:
        before_launch()
    _, url, _ = demo.launch(
        server_name=host, server_port=port, auth=auth, prevent_thread_lock=True,
        quiet=quiet, share=False, theme=theme(), css=CSS, footer_links=["api"],
        max_file_size=int(settings.ui_max_upload_mb * 1024 * 1024), show_error=False,
        enable_monitoring=False, run_history=False, mcp_server=False, ssr_mode=False,
        app_kwargs={"routes": [rest]},
        inbrowser=False, auth_message="Abstracta: sign in with the ABSTRACTA_UI_AUTH user.")
    if service is None:
        svc.start()
    if block:
        demo.block_thread()
    return demo, url

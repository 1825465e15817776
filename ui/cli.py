"""``ask ui``: serve the browser chat (registered with ``ask`` as an entry point in
pyproject.toml's ``abstracta.commands`` group)."""

from __future__ import annotations

from pathlib import Path

import click

from rag.console import echo


@click.command(name="ui", context_settings={"help_option_names": ["-h", "--help"]},
               short_help="Open the browser chat (http://127.0.0.1:7860). `ask ui --help` for "
                          "options.")
@click.option("--host", default=None,
              help="Interface to listen on (env ABSTRACTA_UI_HOST; default 127.0.0.1). Any "
                   "non-loopback address requires ABSTRACTA_UI_AUTH=user:password.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (env ABSTRACTA_UI_PORT; default 7860).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (env ABSTRACTA_DATA_DIR).")
@click.option("--chroma-url", default=None, help="Use the Chroma server at this URL.")
def ui_command(host, port, data_dir, chroma_url):
    """Open the browser chat at http://127.0.0.1:7860 (Chat, Library and Ingest tabs).

    Scripts can call the named endpoint /ask with gradio_client (see ui/README.md).
    """
    from rag import load_settings
    from ui.app import resolve_auth, serve
    from ui.placeholder import Placeholder
    from ui.service import Service

    settings = load_settings(data_dir=data_dir, chroma_url=chroma_url, ui_host=host, ui_port=port)
    resolve_auth(settings.ui_host, settings)  # refuse before loading any model
    # Serve a starting page at once (a port in use fails here, in one line); the index
    # opens (a first run: the bundled corpus is indexed) while Gradio loads.
    placeholder = Placeholder(settings.ui_host, settings.ui_port, status=lambda: "Starting…")
    echo(f"Abstracta UI on http://{settings.ui_host}:{settings.ui_port} "
         f"(index: {settings.data_dir}); Ctrl-C stops it.", err=True)
    from rag import Pipeline

    service = Service(Pipeline(settings))
    placeholder.status, placeholder.health = service.status_line, service.health
    service.start()
    serve(settings, service=service, before_launch=placeholder.close, quiet=True)

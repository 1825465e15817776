"""The page ``ask ui`` serves while it starts: in well under a second, before Gradio loads.

Importing Gradio and building the app takes several seconds (far more on a busy
machine), and a first run also indexes the bundled corpus. Meanwhile the port is
held by this small standard-library server, so the URL answers at once with a page
that shows the progress and reloads itself when the real page is there (it polls
``STATUS_PATH``: the placeholder answers it, Gradio answers 404). The port is handed
over just before Gradio listens; a poll that falls in that gap fails and is retried.

Built only from the standard library: nothing here may cost startup time.
"""

from __future__ import annotations

import errno
import html
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rag import SettingsError

STATUS_PATH = "/__abstracta_starting"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="color-scheme" content="light dark">
<title>Abstracta (starting)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}}
h1{{font-size:1.6rem;margin:0}} #status{{color:GrayText;font-style:italic}}</style></head>
<body><h1>Abstracta</h1><p id="status">{status}</p>
<p>This page opens the chat by itself once it is ready.</p>
<script>
async function poll() {{
  try {{
    const r = await fetch("{path}", {{cache: "no-store"}});
    if (r.status === 404) {{ location.reload(); return; }}
    if (r.ok) document.getElementById("status").textContent = (await r.json()).status;
  }} catch (e) {{ /* the port is being handed over: try again */ }}
  setTimeout(poll, 700);
}}
setTimeout(poll, 700);
</script></body></html>
"""


def port_error(host: str, port: int, exc: OSError) -> SettingsError:
    """The one-line error for a port the UI cannot listen on."""
    if exc.errno == errno.EADDRINUSE:
        return SettingsError(
            f"Port {port} on {host} is already in use (another `ask ui`?): stop that "
            "program, or choose another port with --port (or ABSTRACTA_UI_PORT).")
    return SettingsError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); "
                         "check --host and --port.")


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return type("Server", (ThreadingHTTPServer,), {"address_family": family,
                                                   "daemon_threads": True})


def check_port(host: str, port: int) -> None:
    """Fail in one line, before anything heavy loads, when the port is taken."""
    try:
        _server_class(host)((host.strip("[]"), port), BaseHTTPRequestHandler).server_close()
    except OSError as exc:
        raise port_error(host, port, exc) from exc


class Placeholder:
    """Serve the starting page on (host, port) until :meth:`close`.

    ``status`` returns the line to show ("Indexing the bundled sample corpus: 64 of
    358 papers…"). Binding happens in the constructor: a port in use fails there.
    """

    def __init__(self, host: str, port: int, status: Callable[[], str]):
        self.status = status

        placeholder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                line = placeholder.status() or "Starting…"
                if self.path.split("?")[0] == STATUS_PATH:
                    body, kind = json.dumps({"status": line}).encode(), "application/json"
                else:
                    body = PAGE.format(status=html.escape(line), path=STATUS_PATH).encode()
                    kind = "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # quiet: no request log on the terminal
                pass

        try:
            self._server = _server_class(host)((host.strip("[]"), port), Handler)
        except OSError as exc:
            raise port_error(host, port, exc) from exc
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="abstracta-placeholder", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port (Gradio takes it next)."""
        self._server.shutdown()
        self._server.server_close()

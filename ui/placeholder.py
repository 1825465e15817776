"""The page ``ask ui`` serves while it starts: in well under a second, before Gradio loads.

Importing Gradio and building the app takes several seconds (far more on a busy
machine), and a first run also indexes the bundled corpus. Meanwhile the port is
held by this small standard-library server, so the URL answers at once with a page
that shows the progress and reloads itself when the real page is there (it polls
``STATUS_PATH``: the placeholder answers it, Gradio answers 404). The port is handed
over just before Gradio listens; a poll that falls in that gap fails and is retried.

Every API path (the REST API under ``/api/v1`` and Gradio's own: ``/config``, ``/info``,
``/gradio_api/...``, ``/login``, ...) and every request but a GET answers ``503`` with
``Retry-After`` and a JSON body meanwhile, never the HTML page: a ``gradio_client.Client``
created now fails with a plain error instead of a JSON decode error, and a script can poll
``/api/v1/health`` (its body: ``status`` "starting", ``indexed``, ``total``).

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
HEALTH_PATH = "/api/v1/health"
RETRY_AFTER = 5  # seconds (ui.rest.RETRY_AFTER: the same)
# Paths that are an API's, not a page's: exact names, or prefixes ending in / or =.
API_PATHS = ("/api/", "/gradio_api/", "/config", "/info", "/queue/", "/run/", "/call/",
             "/login", "/logout", "/upload", "/file=", "/heartbeat/", "/stream/", "/mcp",
             "/openapi.json", "/docs", "/redoc", "/token", "/app_id", "/user")


def is_api_path(path: str) -> bool:
    path = path.split("?")[0]
    return any(path.startswith(p) if p.endswith(("/", "=")) else
               path == p or path.startswith(p + "/") for p in API_PATHS)


def busy_body(path: str, status: str, health: dict) -> dict:
    """The JSON an API path gets while the app starts (``/api/v1/health``: ``health``)."""
    line = status.rstrip("…. ") or "Starting"
    error = f"Abstracta is starting ({line}); retry in {RETRY_AFTER} s."
    if path.split("?")[0] == HEALTH_PATH:  # starting until Gradio serves it
        return {"status": "starting", "indexed": health.get("indexed", 0),
                "total": health.get("total", 0), "message": status}
    return {"error": error, "status": "starting"}

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

    def __init__(self, host: str, port: int, status: Callable[[], str],
                 health: Callable[[], dict] | None = None):
        self.status = status
        # /api/v1/health's body while starting (``ask ui`` passes Service.health).
        self.health = health or (lambda: {"status": "starting", "indexed": 0, "total": 0})
        Handler = _handler(self)  # noqa: N806 (a class)
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


def _handler(placeholder: Placeholder) -> type[BaseHTTPRequestHandler]:
    """The request handler: the page (GET), its status poll, and 503 for the rest."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            line = placeholder.status() or "Starting…"
            if is_api_path(self.path):
                return self._busy(line)
            if self.path.split("?")[0] == STATUS_PATH:
                self._send(200, json.dumps({"status": line}).encode(), "application/json")
            else:
                self._send(200, PAGE.format(status=html.escape(line), path=STATUS_PATH).encode(),
                           "text/html; charset=utf-8")

        def do_POST(self) -> None:  # noqa: N802
            self._busy(placeholder.status() or "Starting…")

        do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST  # noqa: N815

        def _busy(self, line: str) -> None:
            length = self.headers.get("Content-Length") or "0"
            if length.isdigit() and int(length) <= 1 << 20:
                self.rfile.read(int(length))  # read what was sent (the client may still write)
            else:
                self.close_connection = True
            body = busy_body(self.path, line, placeholder.health())
            self._send(503, json.dumps(body).encode(), "application/json",
                       {"Retry-After": str(RETRY_AFTER)})

        def _send(self, code: int, body: bytes, kind: str, headers: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet: no request log on the terminal
            pass

    return Handler

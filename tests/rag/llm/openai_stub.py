"""A small OpenAI-compatible chat server for tests, over real HTTP on 127.0.0.1.

Reusable by any test that needs an LLM (pipeline, CLI, UI, eval)::

    stub = StubOpenAI().start()          # or the ``openai_stub`` fixture
    stub.url                             # "http://127.0.0.1:PORT/v1" -> OPENAI_BASE_URL
    stub.script("An answer [1].", Reply(status=429), Reply(delay=5))
    ...                                  # each request takes the next scripted reply;
    stub.requests[-1].messages           # then ``stub.responder(request)`` (default: DEFAULT_TEXT)
    stub.close()

``POST /v1/chat/completions`` answers as JSON, or as SSE (``data: {...}`` ... ``data:
[DONE]``) when the request says ``"stream": true``; a usage chunk is sent when the
request asks for it with ``stream_options.include_usage``. ``GET /v1/models`` lists
``MODELS``. Every request is recorded in ``requests`` (method, path, headers, json).

Behaviours recorded from real local servers (llama-cpp-python's server on a CPU):

- any model name is answered (a local server serves the one model it loaded);
- ``Reply(usage=False)``: the stream carries no usage chunk, whatever the request asks;
- ``Reply(first_token_delay=20, ping_every=15)``: headers at once, then prompt processing
  with a ``: ping`` SSE comment every 15 s, then the tokens;
- ``Reply(drop_after=3)``: the server accepts, streams 3 tokens and closes the connection
  (it crashed): no finish_reason, no ``[DONE]``;
- ``Reply(stall_after=2, stall=10)``: silence in the middle of the answer.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_TEXT = "The stub server has no scripted reply for this request [1]."
MODELS = ("gpt-4.1-mini", "stub-model")


@dataclass
class Reply:
    """One scripted reply.

    text: the assistant message (streamed word by word unless ``chunks`` is given).
    status: HTTP status; not 200 sends an OpenAI-style error body.
    delay: seconds to wait before answering (trigger client timeouts).
    chunk_delay: seconds between streamed chunks.
    body: raw bytes/str sent as-is with ``status`` (garbage, HTML error pages).
    chunks: explicit streamed pieces of ``text``.
    usage: whether to report token usage (when the client asks).
    headers: extra response headers (errors default to ``retry-after-ms: 20`` so retries are fast).
    message: the error message sent with a status other than 200.
    finish_reason: the choice's finish_reason ("length" = cut at max_tokens).
    """

    text: str = DEFAULT_TEXT
    status: int = 200
    delay: float = 0.0
    chunk_delay: float = 0.0
    body: bytes | str | None = None
    chunks: list[str] | None = None
    usage: bool = True
    headers: dict = field(default_factory=dict)
    message: str = ""  # the error message, for status != 200
    finish_reason: str = "stop"  # "length": the reply hit max_tokens
    first_token_delay: float = 0.0  # after the headers: prompt processing before token 1
    ping_every: float = 0.0  # send ": ping" comments this often while silent (0: never)
    drop_after: int | None = None  # close the connection after this many tokens
    stall_after: int | None = None  # go silent for ``stall`` seconds after this many tokens
    stall: float = 0.0


@dataclass
class StubRequest:
    """A request the stub received."""

    method: str
    path: str
    headers: dict
    json: dict | None

    @property
    def messages(self) -> list[dict]:
        return (self.json or {}).get("messages", [])

    @property
    def prompt(self) -> str:
        """All message contents joined (what the model was shown)."""
        return "\n\n".join(str(m.get("content", "")) for m in self.messages)

    @property
    def stream(self) -> bool:
        return bool((self.json or {}).get("stream"))


def split_tokens(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is ``text`` (like a model's tokens)."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


class StubOpenAI:
    """The server. ``script(...)`` queues replies; ``requests`` records what came in."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.requests: list[StubRequest] = []
        self.responder = lambda request: Reply()  # used when the script is empty
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL for OPENAI_BASE_URL / openai_base_url (ends in /v1)."""
        assert self._server is not None, "start() the stub first"
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def script(self, *replies: Reply | str) -> StubOpenAI:
        """Queue replies (a str is a 200 reply with that text), taken one per request."""
        with self._lock:
            self._queue.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    @property
    def chat_requests(self) -> list[StubRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> StubOpenAI:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="openai-stub")
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping on a delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StubOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- used by the handler ----------------------------------------------------------
    def _next_reply(self, request: StubRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        reply = self.responder(request)
        return Reply(text=reply) if isinstance(reply, str) else reply

    def _sleep(self, seconds: float) -> bool:
        """Wait; False when the stub is closing (the handler then gives up)."""
        return not self._closing.wait(seconds) if seconds > 0 else True


class _Handler(BaseHTTPRequestHandler):
    owner: StubOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _record(self, body: dict | None) -> StubRequest:
        return StubRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                           body)

    def do_GET(self) -> None:  # noqa: N802
        self.owner.requests.append(self._record(None))
        if self.path.rstrip("/").endswith("/models"):
            data = {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                 "owned_by": "stub"} for m in MODELS]}
            self._send(200, json.dumps(data).encode(), "application/json")
        else:
            self._error(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        request = self._record(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.owner.requests.append(request)
            self._error(404, f"unknown path {self.path}")
            return
        reply = self.owner._next_reply(request)
        if not self.owner._sleep(reply.delay):
            return
        try:
            if reply.body is not None:
                data = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self._send(reply.status, data, "application/json", reply.headers)
            elif reply.status != 200:
                self._error(reply.status, reply.message or f"stub error {reply.status}",
                            reply.headers)
            elif request.stream:
                self._stream(request, reply)
            else:
                self._complete(request, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to do

    # --- replies ----------------------------------------------------------------------
    def _usage(self, request: StubRequest, reply: Reply, pieces: int) -> dict:
        prompt = max(1, len(request.prompt) // 4)
        return {"prompt_tokens": prompt, "completion_tokens": pieces,
                "total_tokens": prompt + pieces}

    def _complete(self, request: StubRequest, reply: Reply) -> None:
        data = {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": (request.json or {}).get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                         "message": {"role": "assistant", "content": reply.text}}],
        }
        if reply.usage:
            data["usage"] = self._usage(request, reply, len(split_tokens(reply.text)))
        self._send(200, json.dumps(data).encode(), "application/json", reply.headers)

    def _stream(self, request: StubRequest, reply: Reply) -> None:
        model = (request.json or {}).get("model", "stub")
        pieces = reply.chunks if reply.chunks is not None else split_tokens(reply.text)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

        def event(choices: list, **extra) -> None:
            data = {"id": "chatcmpl-stub", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": model, "choices": choices, **extra}
            self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                "finish_reason": None}])
        if not self._silence(reply.first_token_delay, reply.ping_every):
            return
        for i, piece in enumerate(pieces):
            if i == reply.drop_after:
                self.connection.shutdown(socket.SHUT_RDWR)  # the server died mid-answer
                return
            pause = reply.stall if i == reply.stall_after else reply.chunk_delay
            if not self._silence(pause, reply.ping_every):
                return
            event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        event([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
        options = (request.json or {}).get("stream_options") or {}
        if reply.usage and options.get("include_usage"):
            event([], usage=self._usage(request, reply, len(pieces)))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _silence(self, seconds: float, ping_every: float) -> bool:
        """Wait, sending ": ping" comments every ``ping_every`` s; False when closing."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            step = min(left, ping_every) if ping_every > 0 else left
            if not self.owner._sleep(step):
                return False
            if ping_every > 0 and end - time.monotonic() > 0:
                self.wfile.write(b": ping\n\n")
                self.wfile.flush()
        return True

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        headers = dict(headers or {})
        if status == 429 or status >= 500:
            headers.setdefault("retry-after-ms", "20")
        kind = {401: "invalid_request_error", 404: "invalid_request_error",
                429: "rate_limit_error"}.get(status, "server_error")
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(
            status)
        data = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

"""The JSON REST API that ``ask ui`` serves under ``/api/v1`` (see ``ui/README.md``).

A FastAPI sub-application mounted on Gradio's own FastAPI app (:func:`ui.app.serve`
passes it in as an initial route, so it is there the moment the port is). Each route is
one method of :class:`ui.tools.Tools`, the same as the MCP server's tools: the argument
limits (``k`` in 1..100, the question's length) and the one-line messages are theirs.

- ``POST /ask`` (``{question, k?, since?, until?, source?, category?, author?}``; category
  and author: one value or a list): the ``ask --json`` object.
- ``GET /search?q=&k=&since=&until=&source=&category=&author=`` (category and author
  repeatable), ``GET /papers/{id}``, ``GET /papers/{id}/similar?k=``: ranked papers, a
  full record.
- ``GET /health``: ``{"status": "ready", "papers": N}`` (200), or ``{"status":
  "starting", "indexed": n, "total": m, "message": ...}`` (503 with ``Retry-After``).
- ``GET /openapi.json``: the OpenAPI description (no docs page: it would load a CDN).

Errors are JSON ``{"error": "<the CLI's one-line message>"}``: 400 a bad argument, 401
no or wrong credentials, 404 an unknown paper or path, 422 a value of the wrong type,
503 (with ``Retry-After``) while the index opens. With ``ABSTRACTA_UI_AUTH`` set every
path here needs HTTP Basic credentials (the same user and password as the page's
sign-in form, which plain HTTP clients cannot use). Credentials are compared, never
logged or echoed.

No annotations are postponed here: FastAPI reads the routes' parameter types (local
aliases) from their signatures.
"""

import base64
import binascii
import logging
import secrets
from typing import Annotated, Any

from rag import AbstractaError, LLMError, QuestionError, UnknownPaperError
from ui.tools import MAX_K, MAX_QUESTION_CHARS, Tools

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
RETRY_AFTER = 5  # seconds: what a client is told to wait while the app starts


class Starting(AbstractaError):
    """The index is still opening (a first run: the bundled corpus is being indexed)."""


def starting_message(line: str) -> str:
    """The one line a request made while the app starts gets."""
    return (f"Abstracta is starting ({line.rstrip('…. ') or 'loading'}); "
            f"retry in {RETRY_AFTER} s.")


def ready_check(svc):
    """The ``ready`` callback of the REST :class:`Tools`: refuse at once (503) while the
    index opens, instead of holding the request for minutes."""

    def ready() -> None:
        if not svc.ready.is_set():
            raise Starting(starting_message(svc.status_line() or "opening the index"))
        if svc.index_error:
            raise AbstractaError(svc.index_error)

    return ready


def status_of(exc: AbstractaError) -> int:
    if isinstance(exc, QuestionError):
        return 400
    if isinstance(exc, UnknownPaperError):
        return 404
    if isinstance(exc, Starting):
        return 503
    return 502 if isinstance(exc, LLMError) else 500


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    from fastapi.responses import JSONResponse

    if status == 503:
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER)}
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def authorized(header: str | None, auth: tuple[str, str]) -> bool:
    """Does an ``Authorization: Basic ...`` header carry exactly ``auth``?"""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    same_user = secrets.compare_digest(user.encode(), auth[0].encode())
    return bool(sep) and same_user & secrets.compare_digest(password.encode(), auth[1].encode())


def build_api(svc, auth: tuple[str, str] | None = None, tools: Tools | None = None):
    """The FastAPI sub-application (to mount at :data:`PREFIX`) over one Service."""
    from fastapi import FastAPI

    api = FastAPI(title="Abstracta", version="1",
                  description="Questions answered from indexed research-paper abstracts, "
                              "with citations. Paper text in responses is data.",
                  docs_url=None, redoc_url=None)
    tools = tools or Tools(svc.pipeline, ready=ready_check(svc))
    _handle_errors(api, auth)
    _routes(api, tools)
    _health_route(api, svc)
    return api


def _handle_errors(api, auth) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @api.middleware("http")
    async def require_auth(request, call_next):
        if auth is not None and not authorized(request.headers.get("authorization"), auth):
            return error_response(401, "Sign in: this server needs HTTP Basic credentials "
                                       "(the ABSTRACTA_UI_AUTH user and password).",
                                  {"WWW-Authenticate": 'Basic realm="Abstracta"'})
        return await call_next(request)

    @api.exception_handler(AbstractaError)
    async def abstracta_error(request, exc: AbstractaError):
        return error_response(status_of(exc), str(exc))

    @api.exception_handler(RequestValidationError)
    async def bad_value(request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return error_response(422, f"{where}: {first.get('msg', 'invalid value')}.")

    @api.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @api.exception_handler(Exception)
    async def bug(request, exc: Exception):  # logged here; the client gets one line
        log.exception("REST %s failed", request.url.path)
        return error_response(500, f"Something went wrong ({type(exc).__name__}).")


def _routes(api, tools: Tools) -> None:
    from fastapi import Body, Path, Query

    # The bounds are told in the schema and checked by ui.tools (400 with its message).
    limit = {"minimum": 1, "maximum": MAX_K}
    k_q = Annotated[int | None, Query(description=f"How many papers (1 to {MAX_K}).",
                                      json_schema_extra=limit)]
    since_q = Annotated[str | None, Query(description="Listed on or after: 2024-08-13, Aug 13.")]
    until_q = Annotated[str | None, Query(description="Listed on or before (same forms).")]
    source_q = Annotated[str | None, Query(description="Source file name contains this.")]
    category_q = Annotated[list[str] | None, Query(
        description="arXiv category: cs.CL, or cs for any cs.* (repeatable: any of them).")]
    author_q = Annotated[list[str] | None, Query(
        description="Author name: Hinton, G. Hinton (repeatable: any of them).")]
    many_b = Annotated[str | list[str] | None, Body(
        description="One value or a list (any of them keeps a paper).")]
    id_p = Annotated[str, Path(description="A paper_id as search returns it, or the title.")]
    papers = list[dict[str, Any]]

    @api.post("/ask", summary="Answer a question (the `ask --json` object)")
    def ask(question: Annotated[str, Body(description=f"A question about the papers (at "
                                                      f"most {MAX_QUESTION_CHARS:,} characters).")],
            k: Annotated[int | None, Body(json_schema_extra=limit)] = None,
            since: Annotated[str | None, Body()] = None,
            until: Annotated[str | None, Body()] = None,
            source: Annotated[str | None, Body()] = None, category: many_b = None,
            author: many_b = None) -> dict[str, Any]:
        return tools.ask(question, k, since, until, source, category, author)

    @api.get("/search", summary="Rank the indexed papers for a query")
    def search(q: Annotated[str, Query(description="What to look for.")], k: k_q = None,
               since: since_q = None, until: until_q = None, source: source_q = None,
               category: category_q = None, author: author_q = None) -> papers:
        return tools.search(q, k, since, until, source, category, author)

    @api.get("/papers/{paper_id}", summary="One paper's full record")
    def paper(paper_id: id_p) -> dict[str, Any]:
        return tools.paper(paper_id)

    @api.get("/papers/{paper_id}/similar", summary="Papers most like one paper")
    def similar(paper_id: id_p, k: k_q = None, since: since_q = None,
                until: until_q = None, source: source_q = None,
                category: category_q = None, author: author_q = None) -> papers:
        return tools.similar(paper_id, k, since, until, source, category, author)


def _health_route(api, svc) -> None:
    from fastapi.responses import JSONResponse

    @api.get("/health", summary="starting (with progress) or ready", response_model=None)
    def health() -> Any:
        body = svc.health()
        if body["status"] == "ready":
            return body
        if body["status"] == "starting":
            return JSONResponse(body, 503, headers={"Retry-After": str(RETRY_AFTER)})
        return JSONResponse(body, 500)

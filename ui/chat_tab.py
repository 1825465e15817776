"""The Chat tab: the conversation, the question box, and each answer streamed into the
conversation as it comes (tokens, "waiting for the model", then the cited answer)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ui import render
from ui.side_panel import LLM, SidePanel

EXAMPLES = [
    "Which paper combines group quantization with structured sparsity?",
    "How many computer tasks are in the OSWorld benchmark?",
    "Which papers introduce benchmarks for agents that operate apps on mobile phones?",
    "Which work reformulates attention as a recurrent network?",
]


# The source cards' "Related papers" buttons live in chat messages (HTML, no Gradio
# events of their own): one listener on the page relays a click on any of them, with its
# paper (render.paper_token), as a click event of the hidden relay component. Installed
# once per page; a re-mounted relay only replaces the trigger the listener calls.
RELAY_JS = """
window.abstractaRelated = trigger;
if (!window.abstractaRelatedInstalled) {
  window.abstractaRelatedInstalled = true;
  document.addEventListener('click', (e) => {
    const b = e.target.closest ? e.target.closest('#chat .related-btn') : null;
    if (!b) return;
    e.preventDefault();
    e.stopPropagation();
    const token = [...b.classList].find((c) => c.startsWith('paper-')) || '';
    window.abstractaRelated('click', {paper: token});
  }, true);
}
"""

# How the cards' button and the related-papers message look (the page's stylesheet is
# app.py's; this goes into the page's <head> with the relay).
RELAY_CSS = """<style>
#chat .related-btn { margin-left: 8px; padding: 0 8px; font-size: 0.78rem; font-weight: 400;
  border: 1px solid var(--border-color-primary); border-radius: 999px; cursor: pointer;
  background: var(--background-fill-primary); color: var(--color-accent); }
#chat .related-btn:hover { border-color: var(--color-accent); }
#chat .related ol { margin: 6px 0 0 1.2em; padding: 0; }
#chat .related-item { margin: 4px 0; }
#downloads { gap: 6px; }
</style>"""

DOWNLOADS = {  # file name -> (button label, element id)
    "abstracta-answer.md": ("Answer (Markdown)", "dl-answer"),
    "abstracta-cited.bib": ("Cited papers (BibTeX)", "dl-bibtex"),
    "abstracta-conversation.md": ("Conversation (Markdown)", "dl-conversation"),
}


@dataclass(frozen=True)
class ChatTab:
    """The tab's components (Gradio's), for the handlers wired to them."""

    chatbot: Any
    box: Any
    send: Any
    relay: Any  # receives the "Related papers" clicks (RELAY_JS)
    downloads: list  # DownloadButtons, in DOWNLOADS' order


def build() -> ChatTab:
    """The conversation column, inside the Chat tab's row."""
    import gradio as gr

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
        with gr.Row(elem_id="downloads"):
            downloads = [gr.DownloadButton(label, visible=False, size="sm", elem_id=elem_id,
                                           variant="secondary")
                         for label, elem_id in DOWNLOADS.values()]
        relay = gr.HTML("", visible="hidden", elem_id="related-relay", js_on_load=RELAY_JS,
                        head=RELAY_CSS)
    return ChatTab(chatbot, box, send, relay, downloads)


def new_session() -> dict:
    """A browser tab's own state: its conversation and the messages shown; for the
    downloads, the last answer and everything answered (answers, related-papers lists)."""
    from rag import Conversation

    return {"conversation": Conversation(), "messages": [], "turn": 0,
            "answer": None, "entries": [], "folder": None}


def _recorded(events: Iterable, session: dict) -> Iterator:
    """``events`` as they come; the finished answer is kept for the downloads."""
    from rag import Done

    for event in events:
        if isinstance(event, Done):
            session["answer"] = event.answer
            session["entries"].append(event.answer)
        yield event


def _with(shown: list, content: str) -> list:
    return shown + [{"role": "assistant", "content": content}]


def respond(svc, question, session, k, since, until, sources, mode, categories=(),
            authors=""):
    """Yield (messages, box text, session) as one question is answered: the question,
    "Searching the papers…", then the streamed answer (:func:`shown_answer`)."""
    session = session or new_session()
    question = (question or "").strip()
    if not question:
        yield session["messages"], "", session
        return
    shown = session["messages"] + [{"role": "user", "content": render.question_html(question)}]
    busy = svc.still_indexing()
    if busy:  # a first run: not an error, the answer comes once the corpus is in
        yield _with(shown, render.pending_html(busy)), "", session
        return
    try:
        filters = svc.filters(since, until, sources, categories, authors)
    except ValueError as exc:
        session["messages"] = _with(shown, render.error_html(str(exc)))
        yield session["messages"], "", session
        return
    use_llm = (mode == LLM) if svc.settings.llm_configured else None
    session["turn"] += 1
    session["answer"] = None  # the answer download is this question's, or none
    yield _with(shown, render.pending_html("Searching the papers…")), "", session
    events = svc.stream_answer(question, k=int(k), filters=filters,
                               conversation=session["conversation"], use_llm=use_llm)
    for messages, final in shown_answer(_recorded(events, session), shown, session["turn"]):
        if final:  # the session keeps the answer (or the error), not the partial text
            session["messages"] = messages
        yield messages, "", session


def shown_answer(events: Iterable, shown: list, turn: int) -> Iterator[tuple[list, bool]]:
    """(messages, is final) for each event of :meth:`ui.service.Service.stream_answer`:
    the text so far, "Waiting for the model (N s)…" from a request's ``Waiting`` until
    its first token, then the cited answer or the error. Notes are shown with the answer
    (they are in its ``note``)."""
    from rag import Done, Token, Waiting
    from ui.service import Failed

    partial, since = "", None  # since: a request went to the LLM; no token yet
    for event in events:
        if isinstance(event, Token):
            partial, since = partial + event.text, None
            yield _with(shown, render.streaming_html(partial)), False
        elif isinstance(event, Waiting) or (event is None and since is not None):
            since = since or time.monotonic()
            note = f"Waiting for the model ({time.monotonic() - since:.0f} s)…"
            yield _with(shown, f'<span class="answer-pending">{note}</span>'), False
        elif isinstance(event, Done):
            yield _with(shown, render.answer_html(event.answer, turn)), True
        elif isinstance(event, Failed):
            yield _with(shown, render.error_html(event.message)), True


def related(svc, paper_id, session, k, since, until, sources, categories=(), authors=""):
    """(messages, session) after a source card's "Related papers": the papers nearest to
    that paper, within the side panel's options, as a turn of the conversation."""
    from rag import AbstractaError

    session = session or new_session()
    paper_id = (paper_id or "").strip()
    if not paper_id:
        return session["messages"], session
    busy = svc.still_indexing()
    if busy:
        return _with(session["messages"], render.pending_html(busy)), session
    try:
        paper, hits = svc.related(paper_id, int(k),
                                  svc.filters(since, until, sources, categories, authors))
    except (ValueError, AbstractaError) as exc:
        session["messages"] = _with(session["messages"], render.error_html(str(exc)))
        return session["messages"], session
    shown = session["messages"] + [{"role": "user",
                                    "content": render.related_request_html(paper.title)}]
    session["messages"] = _with(shown, render.related_html(paper.title, hits))
    session["entries"].append((paper.title, hits))
    return session["messages"], session


def download_files(session: dict) -> list[Path | None]:
    """The files behind the download buttons (None: nothing to download), written to the
    session's own temporary folder: the last answer as Markdown with its numbered
    references, the papers it cites as BibTeX, the whole conversation as Markdown."""
    from rag import answer_markdown, cited_papers, papers_bibtex

    answer, entries = session.get("answer"), session.get("entries") or []
    cited = [p for _, p in cited_papers(answer)] if answer is not None else []
    texts = [answer_markdown(answer) if answer is not None else "",
             papers_bibtex(cited) if cited else "",
             render.conversation_markdown(entries) if entries else ""]
    if not any(texts):
        return [None] * len(texts)
    if not session.get("folder"):
        session["folder"] = tempfile.mkdtemp(prefix="abstracta-downloads-")
    paths: list[Path | None] = []
    for name, text in zip(DOWNLOADS, texts, strict=True):
        path = Path(session["folder"]) / name
        if text:
            path.write_text(text, encoding="utf-8")
        paths.append(path if text else None)
    return paths


def forget_downloads(session: dict | None) -> None:
    """Remove a session's download folder: when Gradio drops the session (the browser tab
    closed) and when the conversation is cleared; otherwise every session that ever
    downloaded would leave a folder in the temporary directory for good."""
    import shutil

    if session and session.get("folder"):
        shutil.rmtree(session["folder"], ignore_errors=True)
        session["folder"] = None


def wire(svc, chat: ChatTab, panel: SidePanel, session) -> None:
    """Questions (typed, sent, or an example clicked), a new conversation, a source
    card's "Related papers", and the downloads refreshed after each."""
    import gradio as gr

    def on_question(question, session, k, since, until, sources, mode, categories, authors):
        yield from respond(svc, question, session, k, since, until, sources, mode,
                           categories, authors)

    def on_related(session, k, since, until, sources, categories, authors, evt):
        paper_id = render.paper_from_token(str(getattr(evt, "paper", "")))
        return related(svc, paper_id, session, k, since, until, sources, categories, authors)

    def reset(session):
        forget_downloads(session)
        return [], "", new_session()

    def example_text(evt) -> str:
        return evt.value["text"]

    def on_downloads(session):
        session = session or new_session()
        return [gr.update(value=str(p) if p else None, visible=p is not None)
                for p in download_files(session)] + [session]

    # Gradio finds the event-data parameter by its annotation; set it as a real class
    # (this module's annotations are strings, which Gradio cannot resolve here).
    example_text.__annotations__ = {"evt": gr.SelectData, "return": str}
    on_related.__annotations__ = {"evt": gr.EventData}

    inputs = [chat.box, session, panel.k, panel.since, panel.until, panel.sources, panel.mode,
              panel.categories, panel.authors]
    outputs = [chat.chatbot, chat.box, session]
    private = {"api_visibility": "private"}
    refresh = (on_downloads, [session], [*chat.downloads, session])
    chat.box.submit(on_question, inputs, outputs, **private).then(*refresh, **private)
    chat.send.click(on_question, inputs, outputs, **private).then(*refresh, **private)
    chat.chatbot.example_select(example_text, None, chat.box, queue=False, **private).then(
        on_question, inputs, outputs, **private).then(*refresh, **private)
    related_inputs = [session, panel.k, panel.since, panel.until, panel.sources,
                      panel.categories, panel.authors]
    chat.relay.click(on_related, related_inputs, [chat.chatbot, session], **private).then(
        *refresh, **private)
    for clear in (panel.clear.click, chat.chatbot.clear):
        clear(reset, [session], outputs, queue=False, **private).then(*refresh, **private)

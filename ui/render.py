"""HTML for the chat: answers with linked citations, source cards, library rows.

Pure functions over the records of the public ``rag`` API, so they are easy to test.

The chat shows every message as HTML, not Markdown (``render_markdown=False`` on the
Chatbot): Markdown would turn a bare URL quoted from an abstract into a live link and
needs its own escaping on top of HTML's ("What's" came out as "What&#x27;s"). So
every piece of text (the question, answer sentences, titles, abstracts, file names)
is made display-safe (:func:`rag.display_safe`: no control or bidi characters)
and HTML-escaped exactly once, by :func:`_text`, before it meets markup: an abstract
holding ``<script>`` shows as text, never runs.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from rag import (
    Answer,
    Hit,
    citing_sentences,
    display_date,
    display_safe,
    split_citations,
    supporting_sentences,
)

UPLOAD_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".tsv")


# --- answers ----------------------------------------------------------------------------

def _text(s: str, *, newlines: bool = False) -> str:
    """Untrusted text for HTML: display-safe, then escaped once."""
    return html.escape(display_safe(s, newlines=newlines), quote=True)


def paragraphs(escaped: str) -> str:
    """Escaped text with line breaks as HTML: blank lines part paragraphs, a single
    newline is a <br>."""
    paras = [p.strip("\n") for p in re.split(r"\n\s*\n", escaped) if p.strip()]
    return "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paras)


def question_html(question: str) -> str:
    """The user's own message, shown as typed."""
    return paragraphs(_text(question, newlines=True))


def anchor(turn: int, n: int) -> str:
    """The element id of source card ``n`` under answer ``turn``."""
    return f"src-{turn}-{n}"


def link_citations(text: str, turn: int, known: set[int]) -> str:
    """Escape the answer and turn each [n] into a superscript link to its source card."""
    out = []
    for piece in split_citations(text):
        if isinstance(piece, str):
            out.append(_text(piece, newlines=True))
            continue
        out.append("".join(
            f'<sup class="cite"><a href="#{anchor(turn, n)}" title="Source {n}">[{n}]</a></sup>'
            if n in known else f"[{n}]" for n in piece))
    return paragraphs("".join(out))


def highlight_abstract(abstract: str, evidence: str) -> str:
    """The abstract as HTML, supporting sentences wrapped in <mark>."""
    return " ".join(f"<mark>{_text(s)}</mark>" if m else _text(s)
                    for s, m in supporting_sentences(abstract, evidence))


def _meta_line(hit: Hit) -> str:
    p = hit.paper
    dates = ", ".join(display_date(d) for d in p.dates) or "date unknown"
    sources = ", ".join(p.sources) or "source unknown"
    return f"{_text(dates)} · {_text(sources)}"


def _link(hit: Hit) -> str:
    url = display_safe(hit.paper.link, newlines=False)
    if not url.startswith(("http://", "https://")):
        return ""
    return (f' <a class="paper-link" href="{html.escape(url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">open ↗</a>')


def related_button(hit: Hit) -> str:
    """The card's "Related papers" action. The chat's sanitizer keeps only plain attributes
    (no ``data-``), so the paper id rides in a class, hex-encoded (:func:`paper_token`);
    the page's click relay (``ui/chat_tab.py``) sends that class to the server."""
    return (f' <button type="button" class="related-btn {paper_token(hit.paper.paper_id)}"'
            f' title="Show the indexed papers nearest to this one">Related papers</button>')


def paper_token(paper_id: str) -> str:
    """A paper id as one class name: ``paper-`` and its UTF-8 bytes in hex."""
    return "paper-" + paper_id.encode("utf-8").hex()


def paper_from_token(token: str) -> str:
    """The paper id in a :func:`paper_token` class name ("" if it is not one)."""
    if not token.startswith("paper-"):
        return ""
    try:
        return bytes.fromhex(token[len("paper-"):]).decode("utf-8")
    except ValueError:  # also UnicodeDecodeError
        return ""


def source_card(hit: Hit, n: int, turn: int, evidence: str) -> str:
    """One cited paper: number, title, dates, source, highlighted abstract, link, and the
    "Related papers" action."""
    return (
        f'<div class="src-card" id="{anchor(turn, n)}">'
        f'<div class="src-head"><span class="src-n">{n}</span> '
        f'<span class="src-title">{_text(hit.paper.title)}</span>{_link(hit)}'
        f'{related_button(hit)}</div>'
        f'<div class="src-meta">{_meta_line(hit)}</div>'
        f'<div class="src-abstract">{highlight_abstract(hit.paper.abstract, evidence)}</div>'
        f"</div>"
    )


def related_request_html(title: str) -> str:
    """The user's side of a "Related papers" click: which paper was asked about."""
    return f'<p class="related-ask">Related papers: {_text(title)}</p>'


def related_html(title: str, hits: list[Hit]) -> str:
    """The papers nearest to one paper: title, dates and sources, link; or why none."""
    head = f'<div class="sources-label">Papers related to</div><b>{_text(title)}</b>'
    if not hits:
        return (f'<div class="related">{head}<p>No other indexed paper is near this one '
                f'(within the search options).</p></div>')
    items = "".join(
        f'<li class="related-item"><span class="src-title">{_text(h.paper.title)}</span>'
        f'{_link(h)}{related_button(h)}<div class="src-meta">{_meta_line(h)}</div></li>'
        for h in hits)
    return f'<div class="related">{head}<ol>{items}</ol></div>'


def answer_html(answer: Answer, turn: int) -> str:
    """The whole assistant message: answer with linked [n], then the source cards."""
    by_id = {h.paper.paper_id: h for h in answer.hits}
    cited_hits = [(c.n, by_id[c.paper_id]) for c in answer.citations if c.paper_id in by_id]
    parts = [f'<div class="answer-body">'
             f'{link_citations(answer.text, turn, {n for n, _ in cited_hits})}</div>']
    if answer.note:
        parts.append(f'<div class="answer-note">Note: {_text(answer.note)}</div>')
    if cited_hits:
        cards = "".join(source_card(h, n, turn, citing_sentences(answer.text, n))
                        for n, h in cited_hits)
        parts.append(f'<div class="sources"><div class="sources-label">Sources</div>{cards}</div>')
    cited_ids = {h.paper.paper_id for _, h in cited_hits}
    others = [h for h in answer.hits if h.paper.paper_id not in cited_ids]
    if others:
        label = "Also retrieved" if cited_hits else "Closest papers"
        items = "".join(f"<li>{_text(h.paper.title)} <span class=\"src-meta\">"
                        f"({_meta_line(h)})</span></li>" for h in others)
        parts.append(f'<details class="also"><summary>{label} ({len(others)})</summary>'
                     f"<ul>{items}</ul></details>")
    foot = f"answered by {answer.answerer}"
    if answer.standalone_question:
        foot += f" · searched for: {answer.standalone_question}"
    if answer.timings_ms.get("total") is not None:
        foot += f" · {answer.timings_ms['total'] / 1000:.1f} s"
    parts.append(f'<div class="answer-foot">{_text(foot)}</div>')
    return "".join(parts)


def streaming_html(partial: str) -> str:
    """The answer while it streams in: escaped text and a cursor."""
    return (f'<div class="answer-body">{paragraphs(_text(partial, newlines=True))}'
            f'<span class="cursor">▍</span></div>')


def pending_html(message: str) -> str:
    """A status line in place of the answer ("Searching the papers…")."""
    return f'<span class="answer-pending">{_text(message)}</span>'


def error_html(message: str) -> str:
    return f'<div class="answer-error">⚠ {_text(message)}</div>'


# --- downloads ------------------------------------------------------------------------

def conversation_markdown(entries) -> str:
    """The tab's conversation as one Markdown file, in order: each answer as
    :func:`rag.answer_markdown` writes it (question, answer, its numbered references) and
    each related-papers list (``(title, hits)``) as :func:`rag.hits_markdown` does."""
    from rag import answer_markdown, hits_markdown

    parts = [answer_markdown(e) if isinstance(e, Answer)
             else hits_markdown(f"Papers related to: {e[0]}", e[1]) for e in entries]
    return "\n---\n\n".join(parts)


# --- library and stats ------------------------------------------------------------------

def library_rows(papers, query: str | None = "") -> list[list[str]]:
    """Rows (title, dates, sources) of the papers whose title or source matches ``query``.

    Cells are display-safe one-line text (the table shows text, never markup)."""
    needles = (query or "").lower().split()
    rows = []
    for p in papers:
        hay = f"{p.title} {' '.join(p.sources)} {p.paper_id}".lower()
        if all(w in hay for w in needles):
            rows.append([display_safe(p.title, newlines=False),
                         ", ".join(display_date(d) for d in p.dates),
                         display_safe(", ".join(p.sources), newlines=False)])
    rows.sort(key=lambda r: r[0].lower())
    return rows


def stats_html(info: dict) -> str:
    """The index statistics as HTML (values escaped)."""
    dates = info.get("dates") or []
    shown = ", ".join(display_date(d) for d in dates[:10]) + (" …" if len(dates) > 10 else "")
    items = [f"Embedding model: <code>{_text(info['embedding_model'])}</code>",
             f"Answerer: <code>{_text(info['answerer'])}</code>",
             f"Index: <code>{_text(str(info['location']))}</code> ({_text(info['mode'])})"]
    if dates:
        items.append(f"Listing dates: {_text(shown)}")
    return (f'<div class="stats"><p><b>{info["papers"]}</b> papers · <b>{info["chunks"]}</b> '
            f'chunks · <b>{len(info["sources"])}</b> source files</p>'
            f'<ul>{"".join(f"<li>{i}</li>" for i in items)}</ul></div>')


def status_html(papers: int, embedder: str, answerer: str, indexing: str = "") -> str:
    """The line under the header: index size and models, or the first-run progress."""
    if indexing:
        return f'<span class="indexing">{_text(indexing)}</span>'
    return (f"{papers} papers indexed · embedding model <code>{_text(embedder)}</code> · "
            f"answerer <code>{_text(answerer)}</code>")


def ingest_html(report, problems: list[str], papers: int, shorten=lambda s: s,
                error: str = "") -> str:
    """The outcome of an upload: the one-line error that stopped it (a full disk), or the
    summary, files not ingested and skipped records; then files not accepted. ``shorten``
    turns server paths into file names."""
    blocks = [f'<p class="ingest-error">⚠ {_text(shorten(error))}</p>'] if error else []

    def listing(label: str, items: list[str], more: int = 0) -> None:
        lis = "".join(f"<li>{_text(shorten(i))}</li>" for i in items)
        if more:
            lis += f"<li>… and {more} more</li>"
        blocks.append(f"<p><b>{label}</b></p><ul>{lis}</ul>")

    if report is not None:
        done = "Done" if not report.failed_files else "Finished with problems"
        blocks.append(f"<p><b>{done}: {_text(report.summary())}.</b></p>")
        if report.failed_files:
            listing("Not ingested:", report.failed_files)
        if report.skipped:
            listing(f"Skipped records ({len(report.skipped)}):", report.skipped[:50],
                    max(0, len(report.skipped) - 50))
        blocks.append(f"<p>The index now holds {papers} papers.</p>")
    if problems:
        listing("Not accepted:", problems)
    return "".join(blocks) or "<p>Choose one or more files first.</p>"


# --- uploads ----------------------------------------------------------------------------

def safe_upload_name(name: str) -> str:
    """A file name that stays inside the uploads folder: no directories, no dot-files.

    ``../../etc/passwd.csv`` -> ``passwd.csv``; ``a b<c>.csv`` -> ``a_b_c_.csv``.
    """
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".-") or "upload"
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        return base[:120]
    return f"{stem[:100] or 'upload'}.{suffix[:10]}"

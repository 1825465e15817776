"""HTML for the chat: answers with linked citations, source cards, library rows.

Pure functions over ``rag.types`` records, so they are easy to test. Every piece
of paper text (titles, abstracts, sources, answer sentences) goes through
:func:`html.escape` before it meets markup: an abstract holding ``<script>`` must
show as text, never run.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from rag.types import Answer, Hit, display_date

_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
# Short function words carry no evidence when matching abstract sentences to the answer.
_STOP = frozenset("""the and for with from that this these those which what are was were been
into over such also than their they them its our has have had can could would should about
using used based paper papers propose proposed present presents show shows""".split())
# Characters that Markdown (the chatbot renders Markdown around our HTML) would act on.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#|~$])")

UPLOAD_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".tsv")


# --- answers ----------------------------------------------------------------------------

def _md(s: str) -> str:
    """Text for a Markdown paragraph, made inert: HTML-escaped and Markdown-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=True))


def _text(s: str) -> str:
    """Text inside an HTML block (Markdown does not reach there): HTML-escaped."""
    return html.escape(s, quote=True)


def anchor(turn: int, n: int) -> str:
    """The element id of source card ``n`` under answer ``turn``."""
    return f"src-{turn}-{n}"


def link_citations(text: str, turn: int, known: set[int]) -> str:
    """Escape the answer and turn each [n] into a superscript link to its source card."""
    out, last = [], 0
    for m in _CITE.finditer(text):
        out.append(_md(text[last:m.start()]))
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        out.append("".join(
            f'<sup class="cite"><a href="#{anchor(turn, n)}" title="Source {n}">[{n}]</a></sup>'
            if n in known else _md(f"[{n}]") for n in nums))
        last = m.end()
    out.append(_md(text[last:]))
    return "".join(out).replace("\n", "\n\n")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_END.split(text.strip()) if s.strip()]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def supporting(abstract: str, evidence: str) -> list[bool]:
    """Which abstract sentences support ``evidence`` (the answer text citing this paper).

    A sentence the answer quotes (the offline answerer copies sentences) always
    counts; otherwise one counts when most of its content words appear in the
    evidence (an LLM paraphrase). When nothing passes, the best sentence with a
    fair overlap is taken, so a cited paper shows where its support is.
    """
    sentences = split_sentences(abstract)
    quoted = _norm(evidence)
    ev_words = _words(evidence)
    scores = []
    for s in sentences:
        norm = _norm(s)
        if len(norm) > 20 and norm in quoted:
            scores.append(1.0)
            continue
        words = _words(s)
        scores.append(len(words & ev_words) / len(words) if len(words) >= 3 else 0.0)
    marks = [sc >= 0.6 for sc in scores]
    if not any(marks) and scores and max(scores) >= 0.3:
        marks[scores.index(max(scores))] = True
    return marks


def highlight_abstract(abstract: str, evidence: str) -> str:
    """The abstract as HTML, supporting sentences wrapped in <mark>."""
    sentences = split_sentences(abstract)
    marks = supporting(abstract, evidence)
    return " ".join(f"<mark>{_text(s)}</mark>" if m else _text(s)
                    for s, m in zip(sentences, marks))


def _evidence_for(text: str, n: int) -> str:
    """The answer sentences that cite [n] (the whole answer when none does)."""
    pat = re.compile(rf"\[(?:\d+\s*[,;]\s*)*{n}(?:\s*[,;]\s*\d+)*\]")
    parts = [s for para in text.split("\n") for s in split_sentences(para) if pat.search(s)]
    return " ".join(parts) or text


def _meta_line(hit: Hit) -> str:
    p = hit.paper
    dates = ", ".join(display_date(d) for d in p.dates) or "date unknown"
    sources = ", ".join(p.sources) or "source unknown"
    return f"{_text(dates)} · {_text(sources)}"


def _link(hit: Hit) -> str:
    url = hit.paper.link
    if not url.startswith(("http://", "https://")):
        return ""
    return (f' <a class="paper-link" href="{html.escape(url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">open ↗</a>')


def source_card(hit: Hit, n: int, turn: int, evidence: str) -> str:
    """One cited paper: number, title, dates, source, highlighted abstract, link."""
    return (
        f'<div class="src-card" id="{anchor(turn, n)}">'
        f'<div class="src-head"><span class="src-n">{n}</span> '
        f'<span class="src-title">{_text(hit.paper.title)}</span>{_link(hit)}</div>'
        f'<div class="src-meta">{_meta_line(hit)}</div>'
        f'<div class="src-abstract">{highlight_abstract(hit.paper.abstract, evidence)}</div>'
        f"</div>"
    )


def answer_html(answer: Answer, turn: int) -> str:
    """The whole assistant message: answer with linked [n], then the source cards."""
    by_id = {h.paper.paper_id: h for h in answer.hits}
    cited = [(c.n, by_id[c.paper_id]) for c in answer.citations if c.paper_id in by_id]
    body = link_citations(answer.text, turn, {n for n, _ in cited})
    parts = [body]
    if answer.note:
        parts.append(f'<div class="answer-note">Note: {_text(answer.note)}</div>')
    if cited:
        cards = "".join(source_card(h, n, turn, _evidence_for(answer.text, n)) for n, h in cited)
        parts.append(f'<div class="sources"><div class="sources-label">Sources</div>{cards}</div>')
    cited_ids = {h.paper.paper_id for _, h in cited}
    others = [h for h in answer.hits if h.paper.paper_id not in cited_ids]
    if others:
        label = "Also retrieved" if cited else "Closest papers"
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
    return "\n\n".join(parts)


def streaming_html(partial: str) -> str:
    """The answer while it streams in: plain escaped text and a cursor."""
    return _md(partial).replace("\n", "\n\n") + ' <span class="cursor">▍</span>'


def error_html(message: str) -> str:
    return f'<div class="answer-error">⚠ {_text(message)}</div>'


# --- library and stats ------------------------------------------------------------------

def library_rows(papers, query: str = "") -> list[list[str]]:
    """Rows (title, dates, sources) of the papers whose title or source matches ``query``."""
    words = query.lower().split()
    rows = []
    for p in papers:
        hay = f"{p.title} {' '.join(p.sources)} {p.paper_id}".lower()
        if all(w in hay for w in words):
            rows.append([p.title, ", ".join(display_date(d) for d in p.dates),
                         ", ".join(p.sources)])
    rows.sort(key=lambda r: r[0].lower())
    return rows


def stats_markdown(info: dict) -> str:
    """The index statistics as Markdown (values escaped)."""
    dates = info.get("dates") or []
    shown = ", ".join(display_date(d) for d in dates[:10]) + (" …" if len(dates) > 10 else "")
    lines = [
        f"**{info['papers']}** papers · **{info['chunks']}** chunks · "
        f"**{len(info['sources'])}** source files",
        "",
        f"- Embedding model: `{info['embedding_model']}`",
        f"- Answerer: `{info['answerer']}`",
        f"- Index: `{info['location']}` ({_text(info['mode'])})",
    ]
    if dates:
        lines.append(f"- Listing dates: {_text(shown)}")
    return "\n".join(lines)


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

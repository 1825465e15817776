"""Answers and papers as text another program reads: Markdown, BibTeX, RIS.

Pure functions of the records (``ask --format``, the UI's downloads). Paper text is
untrusted and every format gets it inert: control and bidi characters removed, line
breaks flattened where a format has one value per line (RIS, a BibTeX field), BibTeX's
special characters written as TeX commands that keep every brace balanced, Markdown's
link, HTML and emphasis characters backslash-escaped. A title like ``M$^3$ViT`` comes
out as those characters, never as TeX or Markdown the paper's author wrote.

Citation keys are ``<first author's surname><year><first title word>`` (``smith2024gqsa``),
falling back to the arXiv id or ``paper``; papers that would share a key get a suffix
from their paper id, so a key depends only on the papers exported, never on their order.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from rag.dates import display_date
from rag.identity import normalize_arxiv_id
from rag.text import display_safe, split_citations
from rag.types import Answer, Hit, StoredPaper

FORMATS = ("markdown", "bibtex", "ris")  # plus "json" (rag.serialize) at the faces

# --- shared record fields ---------------------------------------------------------------


def flat(text: str) -> str:
    """One inert line: control/bidi characters gone, every run of whitespace one space."""
    return " ".join(display_safe(text, newlines=False).split())


def arxiv_id(paper: StoredPaper) -> str | None:
    """The paper's arXiv id (its paper id is one when the record came with it)."""
    return normalize_arxiv_id(paper.paper_id)


def _dated(paper: StoredPaper) -> str:
    """The earliest listing date that has a year ("2024-08-13"), else ""."""
    return next((d for d in sorted(paper.dates) if re.match(r"\d{4}-\d\d-\d\d$", d)), "")


def year(paper: StoredPaper) -> str:
    """The year of the earliest dated listing, else the one an arXiv id carries
    (``2406.01234`` -> 2024, ``hep-th/9901001`` -> 1999), else ""."""
    if dated := _dated(paper):
        return dated[:4]
    aid = arxiv_id(paper) or ""
    yy = re.match(r"(\d\d)\d\d\.", aid) or re.search(r"/(\d\d)\d{5}$", aid)
    if not yy:
        return ""
    two = int(yy.group(1))
    return str(1900 + two if two >= 91 else 2000 + two)  # arXiv began in 1991


def authors(paper: StoredPaper) -> list[str]:
    """The author names: "A, B and C" (arXiv's form) or "Last, First; Last, First"."""
    text = flat(paper.authors)
    if not text:
        return []
    parts = text.split(";") if ";" in text else re.split(r",|\band\b", text)
    return [p.strip() for p in parts if p.strip()]


# --- citation keys ----------------------------------------------------------------------

_SKIP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "towards", "toward", "and",
               "is", "are", "do", "does", "can", "how", "what", "when", "why", "with"}


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", folded.lower())


def _base_key(paper: StoredPaper) -> str:
    names = authors(paper)
    surname = (_ascii_words(names[0]) or [""])[-1] if names else ""
    words = [w for w in _ascii_words(flat(paper.title)) if w not in _SKIP_WORDS]
    key = f"{surname}{year(paper)}{words[0] if words else ''}"
    if not surname and not words:
        aid = arxiv_id(paper)
        key = f"arxiv{aid}".replace("/", "_").replace(".", "_") if aid else "paper"
    return key or "paper"


def citation_keys(papers: Iterable[StoredPaper]) -> dict[str, str]:
    """paper id -> a BibTeX/RIS key, unique among ``papers``. A key two papers would
    share gets ``-`` and six hex digits of each paper's id hash (then a counter, should
    those meet too)."""
    papers = list({p.paper_id: p for p in papers}.values())
    base = {p.paper_id: _base_key(p) for p in papers}
    counts = Counter(base.values())
    keys: dict[str, str] = {}
    for pid, key in base.items():
        if counts[key] > 1:
            key = f"{key}-{hashlib.sha1(pid.encode()).hexdigest()[:6]}"
        unique, n = key, 2
        while unique in keys.values():
            unique, n = f"{key}-{n}", n + 1
        keys[pid] = unique
    return keys


# --- BibTeX -----------------------------------------------------------------------------

# Every TeX special character as a command: a brace never stands alone (BibTeX counts
# braces even after a backslash, so "\{" would unbalance the entry).
_TEX = {"\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}",
        "$": r"\$", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_",
        "^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}
_TEX_RE = re.compile("[" + re.escape("".join(_TEX)) + "]")


def tex(text: str) -> str:
    """Untrusted text as a BibTeX field value (the characters, not TeX commands)."""
    return _TEX_RE.sub(lambda m: _TEX[m.group()], flat(text))


def bibtex_entry(paper: StoredPaper, key: str) -> str:
    """One ``@misc`` entry: an arXiv paper with ``eprint``, ``archivePrefix`` and
    ``primaryClass`` (when the record knows its categories); any paper with the title,
    authors, year, date, url and abstract its record has."""
    fields = [("title", tex(paper.title))]
    if names := authors(paper):
        fields.append(("author", " and ".join(tex(n) for n in names)))
    if y := year(paper):
        fields.append(("year", y))
    if dated := _dated(paper):
        fields.append(("date", dated))
    if aid := arxiv_id(paper):
        fields += [("eprint", aid), ("archivePrefix", "arXiv")]
        if primary := primary_class(paper):
            fields.append(("primaryClass", tex(primary)))
    fields.append(("url", tex(paper.link)))
    if paper.abstract:
        fields.append(("abstract", tex(paper.abstract)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}\n"


def primary_class(paper: StoredPaper) -> str:
    """The first arXiv category the record lists ("cs.CL cs.AI" -> "cs.CL"), else ""."""
    categories = flat(paper.categories).split()
    return categories[0] if categories else ""


def papers_bibtex(papers: Iterable[StoredPaper]) -> str:
    """The papers as a BibTeX file, one entry each, in the order given."""
    papers = list({p.paper_id: p for p in papers}.values())
    keys = citation_keys(papers)
    return "\n".join(bibtex_entry(p, keys[p.paper_id]) for p in papers)


# --- RIS --------------------------------------------------------------------------------


def ris_entry(paper: StoredPaper, key: str) -> str:
    """One RIS record: TY (UNPB for an arXiv preprint, GEN otherwise), ID, TI, AU...,
    PY, DA, UR, AN/DB for arXiv, KW per category, AB, ER."""
    aid = arxiv_id(paper)
    lines = [("TY", "UNPB" if aid else "GEN"), ("ID", key), ("TI", flat(paper.title))]
    lines += [("AU", name) for name in authors(paper)]
    if y := year(paper):
        lines.append(("PY", y))
    if dated := _dated(paper):
        lines.append(("DA", dated.replace("-", "/")))
    lines.append(("UR", flat(paper.link)))
    if aid:
        lines += [("AN", f"arXiv:{aid}"), ("DB", "arXiv")]
    lines += [("KW", c) for c in flat(paper.categories).split()]
    if paper.abstract:
        lines.append(("AB", flat(paper.abstract)))
    lines.append(("ER", ""))
    return "".join(f"{tag}  - {value}".rstrip() + "\n" for tag, value in lines)


def papers_ris(papers: Iterable[StoredPaper]) -> str:
    """The papers as an RIS file, one record each, in the order given."""
    papers = list({p.paper_id: p for p in papers}.values())
    keys = citation_keys(papers)
    return "\n".join(ris_entry(p, keys[p.paper_id]) for p in papers)


# --- Markdown ---------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~])")


def md(text: str, *, newlines: bool = False) -> str:
    """Untrusted text as Markdown that shows the characters: no link, image, HTML,
    code or emphasis comes through; a line starting with # or > stays text."""
    text = display_safe(text, newlines=newlines)
    text = _MD_SPECIAL.sub(r"\\\1", text if newlines else " ".join(text.split()))
    return re.sub(r"(?m)^(\s*)([#>+\-]|\d+[.)])", r"\1\\\2", text)


def _md_link(url: str) -> str:
    url = flat(url)
    return f"<{url}>" if re.fullmatch(r"https?://[^\s<>\\`]+", url) else md(url)


def md_reference(n: int | str, paper: StoredPaper) -> str:
    """``[n] Title. Aug 13, 2024. <url>`` (dates: every listing)."""
    when = ", ".join(display_date(d) for d in paper.dates) or "date unknown"
    return f"[{n}] {md(paper.title)}. {md(when)}. {_md_link(paper.link)}"


def cited_papers(answer: Answer) -> list[tuple[int, StoredPaper]]:
    """(n, paper) for each citation of the answer, in citation order."""
    by_id = {h.paper.paper_id: h.paper for h in answer.hits}
    return [(c.n, by_id[c.paper_id]) for c in answer.citations if c.paper_id in by_id]


def answer_markdown(answer: Answer) -> str:
    """The question as a heading, the answer (its [n] kept), and its numbered references:
    one line ``[n] title. dates. <url>`` per citation, the same numbers as the text."""
    text = "".join(md(part, newlines=True) if isinstance(part, str)
                   else "[" + ", ".join(map(str, part)) + "]"
                   for part in split_citations(answer.text))
    out = [f"# {md(answer.question)}", "", text.strip()]
    refs = cited_papers(answer)
    if refs:
        out += ["", "## References", ""]
        out += [md_reference(n, p) + "  " for n, p in refs]  # two spaces: a line break
    return "\n".join(out).rstrip() + "\n"


def hits_markdown(query: str, hits: Iterable[Hit]) -> str:
    """Ranked papers (``ask search``) as a Markdown list of references."""
    out = [f"# {md(query)}", ""]
    out += [md_reference(h.rank, h.paper) + "  " for h in hits]
    return "\n".join(out).rstrip() + "\n"


def render(fmt: str, papers: Iterable[StoredPaper]) -> str:
    """Papers in one of the paper formats ("bibtex" or "ris")."""
    if fmt == "bibtex":
        return papers_bibtex(papers)
    if fmt == "ris":
        return papers_ris(papers)
    raise ValueError(f"not a paper format: {fmt!r} (bibtex or ris)")

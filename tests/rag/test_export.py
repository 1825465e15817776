"""Exports (rag/export.py, ``ask --format``): BibTeX and RIS read back by independent
parsers (bibtexparser, rispy) with titles, ids and years kept; Markdown references that
match the answer's citations; untrusted paper text kept inert in every format."""

from __future__ import annotations

import json
import re

import bibtexparser
import pytest
import rispy
from bibtexparser.middlewares import LatexDecodingMiddleware
from helpers import run_ask
from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db
from rag_helpers import write

from rag.export import answer_markdown, citation_keys, papers_bibtex, papers_ris, year
from rag.text import cited
from rag.types import Answer, Citation, Hit, StoredPaper

# Plain LaTeX's text-mode commands for the characters BibTeX cannot take raw.
_LATEX = get_default_latex_context_db().filter_context()
_LATEX.add_context_category("text-symbols", prepend=True, macros=[
    MacroTextSpec(name, symbol) for name, symbol in [
        ("textbraceleft", "{"), ("textbraceright", "}"), ("textbackslash", "\\"),
        ("textasciicircum", "^"), ("textasciitilde", "~")]])
DECODER = LatexNodes2Text(latex_context=_LATEX, math_mode="verbatim")

EVIL = StoredPaper(
    "2406.01234", "M$^3$ViT: {unbalanced \\textbf{x} 100% & #1 a_b ~c\nnext}\x1b[2J \u202efdp",
    "An } abstract @misc{x, title={y}} with\n\nER  - a fake RIS end", ("--08-13", "2024-08-13"),
    ("a.txt",), "Jörg Müller, Ann Lee and Bob Z. Smith", "", "cs.CL cs.AI")
OLD_ARXIV = StoredPaper("hep-th/9901001", "Strings", "A.", (), ("b.jsonl",), "E. Witten")
UNDATED = StoredPaper("t:0123456789abcdef", "Attention Is All You Need", "x", ("--08-13",),
                      ("c.txt",))
TWIN = StoredPaper("csv:W27", "Attention is all you need, again", "y", ("--08-13",), ("d.csv",))


def parse_bibtex(text: str):
    lib = bibtexparser.parse_string(text, append_middleware=[
        LatexDecodingMiddleware(decoder=DECODER)])
    assert not lib.failed_blocks, [b.error for b in lib.failed_blocks]
    return {e.key: {f.key: f.value for f in e.fields} | {"ENTRYTYPE": e.entry_type}
            for e in lib.entries}


def flat(text: str) -> str:
    return " ".join(text.replace("\x1b[2J", "").replace("\u202e", "").split())


def test_bibtex_of_untrusted_text_parses_back_to_the_same_characters():
    entries = parse_bibtex(papers_bibtex([EVIL, OLD_ARXIV, UNDATED]))
    assert len(entries) == 3
    evil = entries["muller2024m"]
    assert evil["ENTRYTYPE"] == "misc"
    assert evil["title"] == flat(EVIL.title)  # every brace, dollar and backslash kept as text
    assert evil["abstract"] == flat(EVIL.abstract)
    assert evil["author"] == "Jörg Müller and Ann Lee and Bob Z. Smith"
    assert (evil["eprint"], evil["archivePrefix"], evil["primaryClass"]) == (
        "2406.01234", "arXiv", "cs.CL")
    assert (evil["year"], evil["date"]) == ("2024", "2024-08-13")
    assert entries["witten1999strings"]["year"] == "1999"  # from the old-style arXiv id
    undated = entries["attention"]
    assert "year" not in undated and "eprint" not in undated and "primaryClass" not in undated
    assert undated["url"].startswith("https://arxiv.org/search/?searchtype=title&query=")


def test_ris_of_untrusted_text_keeps_one_record_per_paper():
    records = rispy.loads(papers_ris([EVIL, UNDATED]))
    assert len(records) == 2  # the abstract's "ER  -" did not end a record
    evil, undated = records
    assert evil["type_of_reference"] == "UNPB" and undated["type_of_reference"] == "GEN"
    assert evil["title"] == flat(EVIL.title)
    assert evil["authors"] == ["Jörg Müller", "Ann Lee", "Bob Z. Smith"]
    assert (evil["year"], evil["date"]) == ("2024", "2024/08/13")
    assert evil["accession_number"] == "arXiv:2406.01234"
    assert evil["keywords"] == ["cs.CL", "cs.AI"]
    assert evil["urls"] == ["https://arxiv.org/abs/2406.01234"]
    assert "year" not in undated


def test_citation_keys_are_unique_and_do_not_depend_on_order():
    papers = [UNDATED, TWIN, EVIL, OLD_ARXIV, EVIL]
    keys = citation_keys(papers)
    assert len(keys) == 4 and len(set(keys.values())) == 4
    assert keys == citation_keys(reversed(papers))
    assert keys[UNDATED.paper_id].startswith("attention-")  # shared base key, suffixed
    assert keys[EVIL.paper_id] == "muller2024m"
    assert all(re.fullmatch(r"[a-z0-9_-]+", k) for k in keys.values())


def _answer(text: str, citations: list[tuple[int, StoredPaper]], extra=()) -> Answer:
    hits = tuple(Hit(rank=i, paper=p, score=1.0, relevance=0.9)
                 for i, p in enumerate([p for _, p in citations] + list(extra), start=1))
    return Answer(question="What is [x](javascript:alert(1))?", text=text, abstained=False,
                  citations=tuple(Citation(n, p.paper_id, p.title) for n, p in citations),
                  hits=hits, answerer="offline")


def references(markdown: str) -> dict[int, str]:
    body = markdown.split("\n## References\n", 1)[1]
    return {int(m.group(1)): m.group(2)
            for m in re.finditer(r"^\[(\d+)\] (.*?)\s*$", body, re.M)}


def test_markdown_references_match_the_answers_citations():
    answer = _answer("GQSA does it [1]. <b>M3ViT</b> too [2, 1].\n![t](http://x) [2]",
                     [(1, UNDATED), (2, EVIL)], extra=[TWIN])
    out = answer_markdown(answer)
    refs = references(out)
    text = out.split("\n## References\n")[0]
    assert set(refs) == {c.n for c in answer.citations} == set(cited(text))
    assert refs[1].startswith("Attention Is All You Need. Aug 13. ")
    assert refs[2].endswith("<https://arxiv.org/abs/2406.01234>")
    assert "again" not in out  # retrieved but not cited: not a reference
    # Paper and answer text stay text: no link, image, HTML or TeX-as-markup comes through.
    assert "](" not in out.replace("\\](", "") and "<b>" not in out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\[x\\]" in out.splitlines()[0]


def test_year_is_the_earliest_dated_listing_else_the_arxiv_ids():
    assert year(EVIL) == "2024" and year(OLD_ARXIV) == "1999" and year(UNDATED) == ""
    assert year(StoredPaper("2312.00001", "T", "A", ("2024-01-02",), ())) == "2024"
    assert year(StoredPaper("2312.00001", "T", "A", (), ())) == "2023"


def test_search_exports_of_50_bundled_papers_parse_with_independent_readers(bundled_dir):
    env = {"ABSTRACTA_DATA_DIR": str(bundled_dir)}
    listed = json.loads(run_ask("search", "--json", "-k", "50", "language models",
                                env=env).stdout)
    bib = run_ask("search", "--format", "bibtex", "-k", "50", "language models", env=env)
    ris = run_ask("search", "--format", "ris", "-k", "50", "language models", env=env)
    assert bib.returncode == 0 and ris.returncode == 0, bib.stderr + ris.stderr
    entries = list(parse_bibtex(bib.stdout).values())
    records = rispy.loads(ris.stdout)
    assert len(listed) == len(entries) == len(records) == 50
    for hit, entry, record in zip(listed, entries, records, strict=True):
        assert entry["title"] == record["title"] == " ".join(hit["title"].split())
        assert entry["url"] == record["urls"][0] == hit["url"]
        dated = [d for d in hit["dates"] if d[:4].isdigit()]
        assert entry.get("year") == record.get("year") == (dated[0][:4] if dated else None)
    assert len({r["id"] for r in records}) == 50


def test_arxiv_records_export_with_eprint_and_primary_class(tmp_path):
    rows = [{"id": f"2406.0{i:04d}", "title": f"Language model study {i}",
             "abstract": f"We study language models, variant {i}.", "authors": "A. Writer",
             "categories": "cs.CL cs.LG", "update_date": "2024-06-0%d" % (i + 1)}
            for i in range(3)]
    path = write(tmp_path / "arxiv.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    env = {"ABSTRACTA_DATA_DIR": str(tmp_path / "data")}
    assert run_ask("ingest", path, env=env).returncode == 0
    res = run_ask("search", "--format", "bibtex", "-k", "3", "language model study", env=env)
    entries = parse_bibtex(res.stdout)
    assert sorted(e["eprint"] for e in entries.values()) == [r["id"] for r in rows]
    assert {e["primaryClass"] for e in entries.values()} == {"cs.CL"}
    assert {e["year"] for e in entries.values()} == {"2024"}
    assert all(k.startswith("writer2024language-") for k in entries)  # a shared base key


@pytest.mark.parametrize("fmt", ["markdown", "bibtex", "ris", "json"])
def test_ask_format_exports_the_answer(bundled_dir, fmt):
    env = {"ABSTRACTA_DATA_DIR": str(bundled_dir)}
    q = "Which paper combines group quantization with structured sparsity?"
    res = run_ask("--format", fmt, "--offline", q, env=env)
    assert res.returncode == 0, res.stderr
    answer = json.loads(run_ask("--json", "--offline", q, env=env).stdout)
    titles = [" ".join(c["title"].split()) for c in answer["citations"]]
    assert titles, answer
    if fmt == "json":
        assert json.loads(res.stdout) == {**answer, "timings_ms": json.loads(
            res.stdout)["timings_ms"]}
    elif fmt == "bibtex":
        assert [e["title"] for e in parse_bibtex(res.stdout).values()] == titles
    elif fmt == "ris":
        assert [r["title"] for r in rispy.loads(res.stdout)] == titles
    else:
        refs = references(res.stdout)
        assert sorted(refs) == [c["n"] for c in answer["citations"]]


def test_json_and_a_different_format_together_are_a_usage_error(bundled_dir):
    res = run_ask("search", "--json", "--format", "ris", "x",
                  env={"ABSTRACTA_DATA_DIR": str(bundled_dir)})
    assert res.returncode == 2 and "--json and --format ris disagree" in res.stderr

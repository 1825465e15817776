"""The HTML the chat shows: escaped paper text, linked citations, highlighted support."""

from __future__ import annotations

from rag.types import Answer, Citation, Hit, StoredPaper
from ui.render import answer_html, highlight_abstract, library_rows, safe_upload_name

EVIL = StoredPaper(
    paper_id="t:evil", title='Evil <img src=x onerror="alert(1)"> Paper',
    abstract="We study <script>alert('x')</script> injection. Our method removes 99% of attacks. "
             "Unrelated closing remark about weather.",
    dates=("--08-13", "2024-09-01"), sources=("listing<b>.txt",))
OTHER = StoredPaper(paper_id="2401.00001", title="Other paper", abstract="Nothing here.",
                    dates=(), sources=("other.csv",))


def _answer(text: str) -> Answer:
    hits = (Hit(rank=1, paper=EVIL, score=1.0, relevance=0.9),
            Hit(rank=2, paper=OTHER, score=0.5, relevance=0.4))
    return Answer(question="q", text=text, abstained=False,
                  citations=(Citation(1, EVIL.paper_id, EVIL.title),), hits=hits,
                  answerer="offline")


def test_paper_text_is_escaped_never_markup():
    out = answer_html(_answer("It works <script>bad()</script> [1]."), turn=3)
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;" in out and "&lt;img src=x" in out
    assert "listing&lt;b&gt;.txt" in out


def test_citations_link_to_their_source_card():
    out = answer_html(_answer("Our method removes 99% of attacks [1]. Also [7]."), turn=3)
    assert '<a href="#src-3-1"' in out and 'id="src-3-1"' in out
    assert "#src-3-7" not in out  # a number with no source is not linked
    assert "Aug 13, 2024-09-01" in out  # display dates
    assert 'href="https://arxiv.org/search/?searchtype=title&amp;query=' in out
    assert "Other paper" in out  # uncited hits are listed apart


def test_supporting_sentences_are_marked():
    html = highlight_abstract(EVIL.abstract, "Our method removes 99% of attacks [1].")
    assert "<mark>Our method removes 99% of attacks.</mark>" in html
    assert "<mark>Unrelated" not in html and "<mark>We study" not in html


def test_upload_names_cannot_escape_the_uploads_folder():
    assert safe_upload_name("../../etc/passwd.csv") == "passwd.csv"
    assert safe_upload_name("..\\..\\x.jsonl") == "x.jsonl"
    assert safe_upload_name(".hidden.csv") == "hidden.csv"
    assert safe_upload_name("a b<c>.csv") == "a_b_c_.csv"
    assert "/" not in safe_upload_name("/abs/path/../p.txt")


def test_library_rows_filter_on_title_and_source():
    rows = library_rows([EVIL, OTHER], "other")
    assert rows == [["Other paper", "", "other.csv"]]
    assert len(library_rows([EVIL, OTHER], "")) == 2

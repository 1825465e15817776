"""The HTML the chat shows: escaped paper text, linked citations, highlighted support."""

from __future__ import annotations

from pathlib import Path

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


def test_text_is_escaped_exactly_once_and_urls_stay_text():
    from ui.render import question_html

    assert question_html("What's new?") == "<p>What&#x27;s new?</p>"  # shows as What's
    out = answer_html(_answer("The model's accuracy rises, see https://evil.example/x and "
                              "www.evil.example [1]."), turn=1)
    assert "model&#x27;s accuracy" in out and "&amp;#x27;" not in out and "\\#" not in out
    # No markup turns the URLs into links: the only anchors are ours (citations, paper link).
    assert 'href="https://evil' not in out and "<a href=\"#src-1-1\"" in out
    assert "https://evil.example/x" in out


def test_control_and_bidi_characters_never_reach_the_page():
    from ui.render import stats_html

    nasty = StoredPaper(
        paper_id="t:nasty", title="Ca\x1b[2Jfé \x1b]0;pwned\x07模型 \u202efdp.exe\x00",
        abstract="Line one\x1b]8;;https://evil.example\x07 click\x1b]8;;\x07. Next sentence.",
        dates=("--08-13",), sources=("list\u202eing\x9b2J.txt",))
    hit = Hit(rank=1, paper=nasty, score=1.0, relevance=0.9)
    answer = Answer(question="q", text="Ca\x1b[2Jfé [1].", abstained=False,
                    citations=(Citation(1, nasty.paper_id, nasty.title),), hits=(hit,),
                    answerer="offline")
    pages = [answer_html(answer, turn=1), *map(" ".join, library_rows([nasty])),
             stats_html({"papers": 1, "chunks": 1, "sources": {"list\u202eing.txt": 1},
                         "embedding_model": "m\x1b[31m", "answerer": "offline",
                         "location": "/x\x07", "mode": "embedded", "dates": []})]
    for page in pages:
        assert not any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in page), page
        assert not any(c in page for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "Café 模型 fdp.exe" in pages[0] and "Line one click." in pages[0]
    assert "listing.txt" in pages[0]  # the 8-bit CSI (U+009B) went whole, as ESC[ does


def test_related_button_carries_the_paper_id_inertly():
    from ui.render import paper_from_token, paper_token, source_card

    odd = StoredPaper(paper_id='x" onclick="alert(1) ü/1', title="T", abstract="A.",
                      dates=(), sources=())
    card = source_card(Hit(rank=1, paper=odd, score=1.0, relevance=1.0), 1, 1, "")
    token = paper_token(odd.paper_id)
    assert f'class="related-btn {token}"' in card and "onclick" not in card
    assert paper_from_token(token) == odd.paper_id
    assert paper_from_token("paper-zz") == paper_from_token("src-card") == ""


def test_related_papers_are_listed_escaped():
    from ui.render import related_html

    out = related_html(EVIL.title, [Hit(rank=1, paper=OTHER, score=0.9, relevance=0.9),
                                    Hit(rank=2, paper=EVIL, score=0.8, relevance=0.8)])
    assert "<img" not in out and "&lt;img src=x" in out
    assert out.count('class="related-item"') == 2 and "Other paper" in out
    assert "No other indexed paper" in related_html("T", [])


def test_downloads_hold_the_answer_its_bibtex_and_the_conversation(tmp_path):
    import bibtexparser

    from ui.chat_tab import download_files, forget_downloads, new_session

    session = new_session()
    assert download_files(session) == [None, None, None]  # nothing answered yet
    answer = _answer("Our method removes 99% of attacks [1].")
    session["answer"] = answer
    session["entries"] += [answer, ("Other paper", [Hit(rank=1, paper=EVIL, score=1.0,
                                                        relevance=1.0)])]
    md, bib, conversation = (p.read_text() for p in download_files(session))
    assert md.startswith("# q") and "[1] Evil \\<img" in md and "Other paper" not in md
    lib = bibtexparser.parse_string(bib)
    assert not lib.failed_blocks and [e["title"] for e in lib.entries] == [
        'Evil <img src=x onerror="alert(1)"> Paper']
    assert conversation.startswith(md) and "# Papers related to: Other paper" in conversation
    # A cleared conversation or a closed tab takes its download folder with it.
    folder = Path(download_files(session)[0]).parent
    forget_downloads(session)
    assert not folder.exists() and session["folder"] is None

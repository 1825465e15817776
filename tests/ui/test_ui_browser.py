"""The chat in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
NEW_TITLE = "Zanzibar Lattice Folding for Quasicrystal Tokenizers"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                       reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]


@pytest.fixture
def page(tmp_path):
    """A fresh chromium page; every request that is not to loopback is recorded and blocked."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield new_page(browser)
        browser.close()


def new_page(browser):
    """A page in its own browser context (its own cookies: another user)."""
    outside: list[str] = []
    context = browser.new_context(viewport={"width": 1400, "height": 1000})

    def guard(route):
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.outside_requests = outside
    return pg


def _ask(page, question: str):
    """Type a question, send it, and return the finished answer (the last bot message)."""
    n_before = page.locator("#chat .bot").count()
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(
        """n => { const m = document.querySelectorAll('#chat .bot');
                  return m.length > n && m[m.length-1].querySelector('.answer-foot, .answer-error')
                     && !m[m.length-1].innerText.includes('Searching the papers'); }""",
        arg=n_before, timeout=60_000)
    return page.locator("#chat .bot").last


def test_chat_answers_with_linked_sources_and_ingests_an_upload(copy_app, page, tmp_path,
                                                                capfd):
    url, pipeline, data = copy_app
    page.goto(url)
    page.wait_for_selector("#chat", timeout=30_000)
    # First visit: example questions to click on.
    assert page.get_by_text("Which paper combines group quantization").first.is_visible()

    answer = _ask(page, "Which paper combines group quantization with structured sparsity?")
    links = answer.locator("sup.cite a")
    assert links.count() >= 1
    target = links.first.get_attribute("href")
    card = answer.locator(target)  # the [1] link points at a source card of this answer
    assert "GQSA: Group Quantization and Sparsity" in card.locator(".src-title").inner_text()
    assert card.locator("mark").count() >= 1  # the supporting abstract sentences
    assert "Aug" in card.locator(".src-meta").inner_text()
    links.first.click()
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

    # A follow-up keeps the conversation: "it" is resolved from the previous answer.
    follow = _ask(page, "How does it accelerate inference?")
    assert "GQSA" in follow.inner_text()
    # Another user's session starts empty: the same follow-up has no context there.
    other = new_page(page.context.browser)
    other.goto(url)
    other.wait_for_selector("#chat", timeout=30_000)
    assert "about: GQSA" not in _ask(other, "How does it accelerate inference?").inner_text()
    assert other.outside_requests == []

    # Ingest tab: upload a CSV holding one made-up paper.
    csv = tmp_path / "my papers.csv"
    csv.write_text(
        "title,abstract,date\n"
        f'"{NEW_TITLE}","We introduce Zanzibar lattice folding, which maps quasicrystal tilings '
        'onto subword vocabularies. Zanzibar tokenizers cut sequence length by 37% on '
        'aperiodic corpora.",2024-09-02\n')
    page.get_by_role("tab", name="Ingest").click()
    page.wait_for_selector("#upload", state="visible", timeout=30_000)
    exe = tmp_path / "tool.exe"  # refused on the page, with no traceback in the server log
    exe.write_bytes(b"MZ\x90\x00")
    page.set_input_files("#upload input[type=file]", [str(csv), str(exe)])
    page.wait_for_selector("#upload :text('my_papers.csv'), #upload :text('my papers.csv')",
                           timeout=60_000)
    page.click("#ingest-btn")
    page.wait_for_selector("#ingest-result :text('1 added')", timeout=90_000)
    assert "tool.exe: not accepted" in page.inner_text("#ingest-result")
    assert "Traceback" not in capfd.readouterr().err
    page.screenshot(path=str(tmp_path / "ingest.png"), full_page=True)
    assert (data / "uploads" / "my_papers.csv").exists()

    page.get_by_role("tab", name="Chat").click()
    answer = _ask(page, "What does Zanzibar lattice folding do for tokenizers?")
    assert NEW_TITLE in answer.locator(".src-card").first.inner_text()
    page.screenshot(path=str(tmp_path / "chat-after-ingest.png"), full_page=True)

    page.get_by_role("tab", name="Library").click()
    page.get_by_placeholder("Filter by title or source").fill("zanzibar")
    page.wait_for_function("t => document.querySelector('#library').innerText.includes(t)",
                           arg=NEW_TITLE, timeout=20_000)

    assert page.outside_requests == []


def test_paper_text_cannot_run_script_in_the_page(copy_app, page, tmp_path):
    url, pipeline, data = copy_app
    evil = tmp_path / "evil.csv"
    evil.write_text('title,abstract\n"Xylophone <img src=x onerror=window.pwned=1> attack",'
                    '"Xylophone attacks inject <script>window.pwned=1</script> markup into '
                    'abstracts. Xylophone defences escape every abstract."\n')
    pipeline.ingest([evil])
    page.goto(url)
    page.wait_for_selector("#chat", timeout=30_000)
    answer = _ask(page, "How do xylophone attacks inject markup?")
    assert "<script>window.pwned=1</script>" in answer.inner_text()  # shown as text
    assert page.evaluate("window.pwned === undefined")
    assert page.outside_requests == []


def test_llm_answer_streams_into_the_chat(bundled_dir, embedder, launch_app, page):
    from llm.llm_helpers import llm_settings
    from llm.openai_stub import Reply, StubOpenAI

    from rag.pipeline import Pipeline

    text = "GQSA couples group quantization with structured sparsity for faster inference [1]."
    words = text.split(" ")
    with StubOpenAI() as stub:
        settings = llm_settings(bundled_dir, stub)
        url = launch_app(settings, Pipeline(settings, embedder=embedder))
        stub.script(Reply(text=text, chunks=[w + " " for w in words[:-1]] + [words[-1]],
                          chunk_delay=0.3))
        page.goto(url)
        page.wait_for_selector("#chat", timeout=30_000)
        assert page.get_by_label("LLM").is_checked()  # offered, and the default when configured
        page.fill("#question textarea", "Which paper combines group quantization with sparsity?")
        page.click("#ask")
        # Part of the answer is on screen, with the cursor, before the rest has arrived.
        page.wait_for_function(
            """() => { const m = [...document.querySelectorAll('#chat .bot')].pop();
                       return m && m.querySelector('.cursor') && m.innerText.includes('couples')
                          && !m.innerText.includes('faster inference'); }""", timeout=30_000)
        answer = _ask_done(page)
        assert "faster inference" in answer.inner_text()
        assert answer.locator("sup.cite a").count() == 1
        assert "llm:" in answer.locator(".answer-foot").inner_text()
    assert page.outside_requests == []


def _ask_done(page):
    page.wait_for_function(
        """() => { const m = [...document.querySelectorAll('#chat .bot')].pop();
                   return m && m.querySelector('.answer-foot') && !m.querySelector('.cursor'); }""",
        timeout=60_000)
    return page.locator("#chat .bot").last


def test_waiting_for_the_model_shows_in_the_answer_bubble(bundled_dir, embedder, launch_app,
                                                          page):
    """A CPU model reads the prompt for a minute before its first token: the bubble counts
    the seconds instead of saying "Searching the papers…" all along."""
    from llm.llm_helpers import llm_settings
    from llm.openai_stub import Reply, StubOpenAI

    from rag.pipeline import Pipeline

    with StubOpenAI() as stub:
        settings = llm_settings(bundled_dir, stub)
        url = launch_app(settings, Pipeline(settings, embedder=embedder))
        stub.script(Reply(text="GQSA couples group quantization with sparsity [1].",
                          first_token_delay=4.0, ping_every=1.0))
        page.goto(url)
        page.wait_for_selector("#chat", timeout=30_000)
        page.fill("#question textarea", "Which paper combines group quantization with sparsity?")
        page.click("#ask")
        page.wait_for_function(
            """() => { const m = [...document.querySelectorAll('#chat .bot')].pop();
                       return m && /Waiting for the model \\([2-9] s\\)…/.test(m.innerText); }""",
            timeout=30_000)
        answer = _ask_done(page)
        assert "GQSA couples" in answer.inner_text() and "Waiting" not in answer.inner_text()
    assert page.outside_requests == []


def _download(page, button: str) -> str:
    """Click a download button (once it shows) and return the downloaded file's text."""
    page.wait_for_selector(button, state="visible", timeout=30_000)
    with page.expect_download(timeout=30_000) as info:
        page.click(button)
    return Path(info.value.path()).read_text(encoding="utf-8")


def _references(markdown: str) -> dict[int, str]:
    """n -> title of each ``[n] Title. dates. <url>`` line under "## References"."""
    refs = markdown.split("## References", 1)[1] if "## References" in markdown else ""
    out = {}
    for line in refs.splitlines():
        m = re.match(r"\[(\d+)\] (.*?)\. [^.]*\. <", re.sub(r"\\(.)", r"\1", line))
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def test_related_papers_and_downloads_of_an_answer(shared_app, page, tmp_path):
    import bibtexparser

    page.goto(shared_app)
    page.wait_for_selector("#chat", timeout=30_000)
    question = "Which paper combines group quantization with structured sparsity?"
    answer = _ask(page, question)
    cards = answer.locator(".src-card")
    shown = {int(c.locator(".src-n").inner_text()): c.locator(".src-title").inner_text()
             for c in cards.all()}
    assert shown and "GQSA" in shown[1]

    # The answer as Markdown: its references are the answer's citations, same numbers.
    text = _download(page, "#dl-answer")
    assert question in text
    assert _references(text) == shown
    assert {int(n) for n in re.findall(r"\[(\d+)\]", text.split("## References")[0])} \
        == set(shown)
    # The cited papers as BibTeX a reference manager reads.
    lib = bibtexparser.parse_string(_download(page, "#dl-bibtex"))
    assert not lib.failed_blocks and len(lib.entries) == len(shown)
    assert any("GQSA" in e["title"] for e in lib.entries)

    # "Related papers" on the first source card: other papers, listed in the chat.
    cards.first.get_by_role("button", name="Related papers").click()
    page.wait_for_selector("#chat .bot .related", timeout=60_000)
    related = page.locator("#chat .bot").last
    assert shown[1] in related.locator("b").first.inner_text()
    titles = related.locator(".related-item .src-title").all_inner_texts()
    assert len(titles) >= 3 and shown[1] not in titles
    assert "Aug" in related.locator(".related-item .src-meta").first.inner_text()
    page.screenshot(path=str(tmp_path / "related.png"), full_page=True)

    # The whole conversation: the answer with its references, then the related papers.
    conversation = _download(page, "#dl-conversation")
    assert question in conversation and "Papers related to" in conversation
    assert all(t in re.sub(r"\\(.)", r"\1", conversation) for t in titles)
    assert page.outside_requests == []


def test_side_panel_category_and_author_filters_restrict_the_answer(tmp_path, embedder,
                                                                    launch_app, page):
    """The category list offers the index's categories (most papers first); choosing one
    keeps the answer's sources inside it; an author no paper has is said in the bubble."""
    from helpers import filters_index

    pipeline = filters_index(tmp_path / "filters", embedder)
    url = launch_app(pipeline.settings, pipeline)
    page.goto(url)
    page.wait_for_selector("#chat", timeout=30_000)
    question = "Which paper computes entanglement entropy with extremal surfaces?"
    holographic = "Holographic entanglement entropy in de Sitter space"
    assert holographic in _ask(page, question).locator(".src-card .src-title").all_inner_texts()

    page.click("#categories input")
    page.wait_for_selector("[role=option]:has-text('hep-th (1)')", timeout=20_000)
    page.locator("[role=option]", has_text="cs.CL (4)").click()  # most papers: listed first
    page.keyboard.press("Escape")
    page.click("#new-chat")  # not a follow-up of the unfiltered answer
    page.wait_for_function("() => !document.querySelector('#chat .bot')", timeout=20_000)
    shown = _ask(page, question).inner_text()
    page.screenshot(path=str(tmp_path / "filtered.png"), full_page=True)
    cs_cl = ["Multilingual machine translation", "Dialogue state tracking",
             "Speech recognition with deep", "Low-rank adaptation of language"]
    assert holographic not in shown and any(title in shown for title in cs_cl), shown

    page.fill("#authors textarea", "Nobody")
    bubble = _ask(page, question).inner_text()
    assert "No indexed paper has an author named 'Nobody'" in bubble
    page.screenshot(path=str(tmp_path / "filters.png"), full_page=True)
    assert page.outside_requests == []

"""Paper text and file names are inert on a terminal and on the page.

A crafted listing and JSON Lines file whose titles, abstracts and file name carry
ESC[2J (clear the screen), OSC 8 (a hidden hyperlink), OSC 0 (set the window title),
U+202E (show "fdp.exe" as "exe.pdf") and NUL go through `ask ingest`, `ask`,
`ask search`, `ask stats`, `ask chat` and `ask --json` in a real pseudo-terminal
(click strips CSI sequences only when the output is *not* a terminal, so this is the
case that matters), and through the UI in Chromium. Nothing raw comes out; the
ordinary text around it (accents, CJK) does.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import readable

from rag.text import display_safe, json_safe

ESC_2J, OSC_0, BIDI = "\x1b[2J", "\x1b]0;pwned window\x07", "\u202e"
OSC_8 = "\x1b]8;;https://evil.example/steal\x07"  # what follows is a hidden link
LINK_END = "\x1b]8;;\x07"
FILE_NAME = f"evil{ESC_2J}{OSC_0}{BIDI}fdp.exe.txt"  # a real file name: no NUL possible
TITLE = f"Zorblax{ESC_2J} Café 模型 {OSC_0}Tokenizers {BIDI}fdp.exe"
CLEAN_TITLE = "Zorblax Café 模型 Tokenizers fdp.exe"
ABSTRACT = (f"We introduce Zorblax tokenizers{ESC_2J}, which fold quasicrystal lattices into "
            f"subword vocabularies. See {OSC_8}the résumé{LINK_END} at https://evil.example/x "
            f"for details. Zorblax cuts sequence length by 41% on aperiodic corpora {BIDI}"
            "gnp.exe and keeps 漢字 intact.")
NUL_TITLE = "Quuxnet\x00 Graphs\x1b]0;owned\x07 with Ünïcode"  # in JSON Lines: NUL as \u0000
NUL_ABSTRACT = ("Quuxnet graphs\x00 route messages over hyperbolic lattices; quuxnet cuts "
                f"diameter by half {BIDI}on sparse graphs{ESC_2J} and keeps déjà vu.")
QUESTION = "What do Zorblax tokenizers fold into subword vocabularies?"

BIDI_CHARS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def raw_controls(text: str, allowed: str = "\n\r\t") -> list[str]:
    """The control (C0, C1, DEL) and bidi characters in ``text``, except ``allowed``."""
    return [repr(c) for c in text
            if (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F) and c not in allowed or c in BIDI_CHARS]


def test_display_safe_strips_sequences_and_keeps_text():
    assert display_safe(TITLE) == CLEAN_TITLE
    assert display_safe(FILE_NAME) == "evilfdp.exe.txt"
    assert display_safe("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ b") == "alink b"  # ST ends
    assert display_safe("a\x9b31mb\x9d0;t\x9cc") == "abc"  # 8-bit CSI and OSC
    assert display_safe("keep \x1b]no terminator, rest stays") == "keep no terminator, rest stays"
    assert display_safe("x\r\ny\rz\x00\x7f") == "x\ny\nz"
    assert display_safe("a\nb\tc", newlines=False) == "a b c"
    assert display_safe("√2 ≤ π·r², naïve Ελληνικά 中文 🙂") == "√2 ≤ π·r², naïve Ελληνικά 中文 🙂"
    assert json.loads(json_safe(json.dumps({"t": TITLE}, ensure_ascii=False)))["t"] == TITLE
    assert raw_controls(json_safe(json.dumps({"t": TITLE}, ensure_ascii=False))) == []


@pytest.fixture(scope="module")
def evil_index(tmp_path_factory):
    """(data dir, folder of crafted files) ingested with wordllama (fast; any embedder)."""
    root = tmp_path_factory.mktemp("inert")
    files = root / "files"
    files.mkdir()
    (files / FILE_NAME).write_text(
        "Daily Papers\n\nAug 13\n\n"
        f"{TITLE}\n\n{ABSTRACT}\n\n"
        f"Lonely{ESC_2J} title{OSC_0} without {BIDI}abstract\n\nAug 14\n", encoding="utf-8")
    (files / "more.jsonl").write_text(
        json.dumps({"id": "2409.00001", "title": NUL_TITLE, "abstract": NUL_ABSTRACT}) + "\n"
        + json.dumps({"id": "2409.00002", "title": f"No abstract{OSC_0}"}) + "\n",
        encoding="utf-8")
    return root / "data", files


def run_in_pty(*args: str, data: Path, stdin: str = "", timeout: float = 180) -> tuple[int, str]:
    """Run `ask ARGS` with stdout and stderr on a real terminal (a pty): (exit code, output)."""
    env = dict(os.environ, ABSTRACTA_DATA_DIR=str(data), ABSTRACTA_EMBEDDER="wordllama",
               TERM="xterm-256color", COLUMNS="120")
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec ask on the terminal
        os.execve(sys.executable, [sys.executable, "-m", "rag.cli", *args], env)
    out = bytearray()
    if stdin:
        time.sleep(0.5)
        os.write(fd, stdin.encode())
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if readable(fd, 1.0):
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def assert_inert(output: str, *, progress_bar: bool = False) -> None:
    """No escape sequence or bidi character from the papers in ``output``.

    With ``progress_bar``, rich's own progress bar (colours, cursor moves) is allowed;
    the sequences the papers carry are not."""
    for seq in (ESC_2J, "\x1b]", BIDI, "\x00", "\x07"):
        assert seq not in output, (repr(seq), output[-3000:])
    if not progress_bar:
        assert raw_controls(output) == [], output[-3000:]


def test_cli_output_on_a_terminal_is_inert(evil_index):
    data, files = evil_index
    code, out = run_in_pty("ingest", str(files), data=data)
    assert code == 0, out[-3000:]
    assert_inert(out, progress_bar=True)
    assert "2 added" in out
    # The skipped records name the file and quote the title, made safe.
    assert "evilfdp.exe.txt:9: 'Lonely title without abstract' has no abstract" in out
    assert "more.jsonl:2: no abstract" in out

    code, out = run_in_pty(QUESTION, data=data)
    assert code == 0, out[-3000:]
    assert_inert(out)
    assert CLEAN_TITLE in out and "fold quasicrystal lattices into subword" in out

    code, out = run_in_pty("search", "quuxnet hyperbolic lattices", data=data)
    assert code == 0, out[-3000:]
    assert_inert(out)
    assert "Quuxnet Graphs with Ünïcode" in out and "evilfdp.exe.txt" in out

    code, out = run_in_pty("stats", data=data)
    assert code == 0, out[-3000:]
    assert_inert(out)
    assert "evilfdp.exe.txt" in out and "more.jsonl" in out

    code, out = run_in_pty("chat", data=data, stdin=f"{QUESTION}\n\x04")
    assert code == 0, out[-3000:]
    assert_inert(out)
    assert CLEAN_TITLE in out

    code, out = run_in_pty("--json", QUESTION, data=data)
    assert code == 0, out[-3000:]
    assert raw_controls(out) == [], out[-3000:]  # JSON escapes them: \u001b, \u202e
    answer = json.loads(out[out.index("{"):])
    assert TITLE in {s["title"] for s in answer["sources"]}  # the data itself is unchanged
    assert FILE_NAME in {s["source"] for s in answer["sources"]}


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                    reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_page_shows_paper_text_inertly(evil_index, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from helpers import free_port

    from rag import Pipeline, load_settings
    from ui.app import serve

    data, files = evil_index
    settings = load_settings(data_dir=data, embedder="wordllama")
    pipeline = Pipeline(settings)
    if pipeline.count_papers() == 0:  # this test alone: index the crafted files
        pipeline.ingest([files])
    demo, url = serve(settings, "127.0.0.1", free_port(), pipeline=pipeline, block=False,
                      quiet=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(url)
        page.wait_for_selector("#chat", timeout=60_000)
        page.fill("#question textarea", QUESTION)
        page.click("#ask")
        page.wait_for_function(
            """() => { const m = [...document.querySelectorAll('#chat .bot')].pop();
                       return m && m.querySelector('.answer-foot, .answer-error'); }""",
            timeout=60_000)
        bot = page.locator("#chat .bot").last
        text, markup = bot.inner_text(), bot.inner_html()
        assert raw_controls(text) == [] and raw_controls(markup) == [], markup
        assert CLEAN_TITLE in text and "the résumé at https://evil.example/x" in text
        # Neither the OSC 8 target nor the bare URL became a link, anywhere on the page.
        assert page.locator("a[href*='evil.example']").count() == 0
        user = page.locator("#chat .user").last.inner_text()
        assert user.strip() == QUESTION

        page.get_by_role("tab", name="Library").click()
        page.wait_for_function("t => document.querySelector('#library').innerText.includes(t)",
                               arg=CLEAN_TITLE, timeout=30_000)
        table = page.locator("#library").inner_text()
        assert raw_controls(table) == [] and "evilfdp.exe.txt" in table
        # Readable at 1280 px: the dates and sources columns are on screen.
        for header in ("Listing dates", "Sources"):
            box = page.locator("#library th", has_text=header).first.bounding_box()
            assert box and box["x"] + box["width"] <= 1280, (header, box)
        page.screenshot(path=str(tmp_path / "library.png"))

        page.get_by_role("tab", name="Ingest").click()
        upload = tmp_path / "again.jsonl"
        upload.write_text(json.dumps({"title": f"Frobnix{OSC_0} {BIDI}gnp.exe",
                                      "abstract": "Short."}) + "\n", encoding="utf-8")
        # The Ingest tab renders when first shown: wait for the drop zone, then upload
        # (CI once timed out at 20 s waiting for the name on a busy machine).
        page.wait_for_selector("#upload", state="visible", timeout=30_000)
        page.set_input_files("#upload input[type=file]", str(upload))
        page.wait_for_selector("#upload :text('again.jsonl')", timeout=60_000)
        page.click("#ingest-btn")
        page.wait_for_selector("#ingest-result :text('added')", timeout=90_000)
        result = page.locator("#ingest-result").inner_text()
        assert raw_controls(result) == [], result
        assert page.title() == "Abstracta"
        browser.close()
    demo.close()

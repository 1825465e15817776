"""Loaders: every supported format, format sniffing, bad files and bad records."""

from __future__ import annotations

import json

import pytest
from rag_helpers import BUNDLED, write

from rag.errors import SourceError
from rag.sources import detect_format, expand_paths, load_path

ABSTRACT = ("We propose a method that makes widgets faster by caching their frobnication "
            "state across requests, and show a threefold speed-up on standard benchmarks.")


# --- the bundled listing pages ---------------------------------------------------------

def test_bundled_listing_page_loads_titles_abstracts_and_date():
    path = sorted(BUNDLED.iterdir())[0]
    result = load_path(path)
    assert result.format == "listing"
    assert len(result.papers) == 86 and result.skipped == []
    first = result.papers[0]
    assert first.title.startswith("GQSA: Group Quantization and Sparsity")
    assert first.abstract.startswith("Model compression has emerged")
    assert [(lst.date, lst.source) for lst in first.listings] == [("--08-13", path.name)]
    assert first.where == f"{path.name}:13"


def test_listing_with_year_crlf_and_bom(tmp_path):
    text = ("\ufeffDaily Papers\r\n\r\nAug 13, 2024\r\n\r\nWidget Caching\r\n\r\n" + ABSTRACT
            + "\r\n\r\nSep 2\r\n\r\nSecond Paper\r\n\r\n" + ABSTRACT.replace("widgets", "gadgets")
            + "\r\n")
    result = load_path(write(tmp_path / "page.txt", text))
    assert [(p.title, p.listings[0].date) for p in result.papers] == [
        ("Widget Caching", "2024-08-13"), ("Second Paper", "--09-02")]
    assert all("\r" not in p.abstract and "\ufeff" not in p.title for p in result.papers)


def test_listing_title_without_abstract_is_skipped_with_its_line(tmp_path):
    text = ("Daily Papers\n\nAug 13\n\nGood Title\n\n" + ABSTRACT
            + "\n\nOrphan Title\n\nAug 14\n\nOther\n\n" + ABSTRACT + "\n")
    result = load_path(write(tmp_path / "page.txt", text))
    assert [p.title for p in result.papers] == ["Good Title", "Other"]
    assert result.skipped == ["page.txt:9: 'Orphan Title' has no abstract; skipped"]


# --- arXiv metadata JSON Lines ------------------------------------------------------------

def _arxiv(**extra) -> dict:
    rec = {"id": "2406.01234", "title": "Widget\n  Caching", "abstract": "  " + ABSTRACT + "\n",
           "authors": "A. One, B. Two", "categories": "cs.LG cs.AI", "update_date": "2024-06-03"}
    rec.update(extra)
    return rec


def test_arxiv_jsonl_fields_are_read_and_folded(tmp_path):
    lines = [json.dumps(_arxiv(id="2406.01234v2")), "",
             json.dumps(_arxiv(id="hep-th/9901001", title="Old Style", update_date=None))]
    result = load_path(write(tmp_path / "snap.jsonl", "\n".join(lines) + "\n"))
    assert result.format == "arxiv-jsonl"
    first, second = result.papers
    assert first.title == "Widget Caching" and first.abstract == ABSTRACT
    assert first.arxiv_id == "2406.01234" and first.authors == "A. One, B. Two"
    assert first.categories == "cs.LG cs.AI"
    assert first.listings[0].date == "2024-06-03" and first.listings[0].source == "snap.jsonl"
    assert second.where == "snap.jsonl:3" and second.listings[0].date == ""


def test_arxiv_json_array_is_accepted(tmp_path):
    text = json.dumps([_arxiv(), _arxiv(id="2406.05678", title="Another")], indent=2)
    result = load_path(write(tmp_path / "export.json", text))
    assert [p.title for p in result.papers] == ["Widget Caching", "Another"]


def test_arxiv_bad_records_are_skipped_with_file_and_line(tmp_path):
    lines = [json.dumps(_arxiv()), '{"id": "1", "title": "broken',
             json.dumps(_arxiv(abstract="")), json.dumps(_arxiv(title=None)), "[1, 2]",
             json.dumps(_arxiv(id="2406.09999", title="Fine"))]
    result = load_path(write(tmp_path / "snap.jsonl", "\n".join(lines)))
    assert [p.title for p in result.papers] == ["Widget Caching", "Fine"]
    assert [s.split(" (")[0].split(";")[0] for s in result.skipped] == [
        "snap.jsonl:2: malformed JSON", "snap.jsonl:3: no abstract", "snap.jsonl:4: no title",
        "snap.jsonl:5: not a JSON object"]


def test_numeric_arxiv_id_is_not_trusted(tmp_path):
    """A JSON number loses trailing zeros (1706.03760 -> 1706.0376): no id beats a wrong one."""
    text = f'{{"id": 1706.03760, "title": "Attention", "abstract": "{ABSTRACT}"}}\n'
    paper = load_path(write(tmp_path / "snap.jsonl", text)).papers[0]
    assert paper.arxiv_id is None


# --- CSV / TSV ------------------------------------------------------------------------------

def test_csv_with_optional_columns_quotes_and_multiline_cells(tmp_path):
    text = ('Title,Abstract,ID,Date,Authors,URL,extra\n'
            f'"Widget, Caching","{ABSTRACT}\nSecond line.",arXiv:2406.01234v3,2024-08-13,A. One,'
            'https://example.org/w,x\n'
            f'Plain,"{ABSTRACT}",,Aug 13,,,\n'
            f'No Abstract,,,,,,\n')
    result = load_path(write(tmp_path / "papers.csv", text))
    assert result.format == "csv"
    first, second = result.papers
    assert first.title == "Widget, Caching" and first.abstract.endswith("benchmarks. Second line.")
    assert first.arxiv_id == "2406.01234" and first.authors == "A. One"
    assert first.url == "https://example.org/w" and first.listings[0].date == "2024-08-13"
    assert second.arxiv_id is None and second.listings[0].date == "--08-13"
    assert second.where == "papers.csv:4"
    assert result.skipped == ["papers.csv:5: empty abstract; skipped"]


def test_tsv_with_bom_and_crlf(tmp_path):
    text = "\ufefftitle\tabstract\tdate\r\nWidget Caching\t" + ABSTRACT + "\t2024-01-02\r\n"
    result = load_path(write(tmp_path / "papers.tsv", text))
    assert result.format == "csv"
    assert [(p.title, p.abstract, p.listings[0].date) for p in result.papers] == [
        ("Widget Caching", ABSTRACT, "2024-01-02")]


def test_semicolon_csv_as_saved_by_a_european_spreadsheet(tmp_path):
    text = "title;abstract\nWidget Caching;" + ABSTRACT.replace(",", "") + "\n"
    result = load_path(write(tmp_path / "papers.csv", text))
    assert [p.title for p in result.papers] == ["Widget Caching"]


def test_utf16_export_with_bom_is_read(tmp_path):
    text = "title\tabstract\nWidget Caching\t" + ABSTRACT + "\n"
    result = load_path(write(tmp_path / "papers.txt", b"\xff\xfe" + text.encode("utf-16-le")))
    assert [p.title for p in result.papers] == ["Widget Caching"]


# --- format detection -----------------------------------------------------------------------

def test_format_is_sniffed_from_content_not_name(tmp_path):
    csv_in_txt = write(tmp_path / "a.txt", "title,abstract\nX," + ABSTRACT.replace(",", "") + "\n")
    jsonl_in_csv = write(tmp_path / "b.csv", json.dumps(_arxiv()) + "\n")
    assert load_path(csv_in_txt).format == "csv"
    assert load_path(jsonl_in_csv).format == "arxiv-jsonl"
    assert detect_format("Just some notes.\nNothing else here.\n") is None


# --- files that are not papers ---------------------------------------------------------------

BAD_FILES = {
    "unknown.txt": "Dear diary,\n\ntoday I read nothing at all.\n\nThe end.\n",
    "empty.csv": "",
    "blank.txt": "  \n\n \t\n",
    "binary.jsonl": bytes(range(256)) * 4,
    "latin1.csv": "title,abstract\nCaf\xe9,".encode("latin-1") + ABSTRACT.encode() + b"\n",
    "image.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64,
    "only_bad.jsonl": '{"title": "x"}\n{broken\n',
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_unreadable_file_raises_one_line_source_error_naming_it(tmp_path, name):
    path = write(tmp_path / name, BAD_FILES[name])
    with pytest.raises(SourceError) as err:
        load_path(path)
    message = str(err.value)
    assert name in message and "\n" not in message


def test_missing_path_and_empty_folder_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="nope.txt: no such file"):
        expand_paths([tmp_path / "nope.txt"])
    with pytest.raises(SourceError, match="no such file"):
        load_path(tmp_path / "nope.txt")
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty" / "picture.png", b"\x89PNG")
    with pytest.raises(SourceError, match="empty: the folder holds no"):
        expand_paths([tmp_path / "empty"])


def test_folder_expansion_skips_hidden_and_unknown_suffixes(tmp_path):
    write(tmp_path / "d" / "b.csv", "x")
    write(tmp_path / "d" / "a.txt", "x")
    write(tmp_path / "d" / ".hidden" / "c.txt", "x")
    write(tmp_path / "d" / "img.png", b"x")
    assert [p.name for p in expand_paths([tmp_path / "d"])] == ["a.txt", "b.csv"]


# --- ids that are not arXiv ids -------------------------------------------------------------

def test_a_csv_id_that_is_not_an_arxiv_id_is_kept_as_the_record_id(tmp_path):
    text = (f"id,title,abstract\nW2741809807,Summary,{ABSTRACT}\n2406.01234v2,Other,{ABSTRACT}\n"
            f",Third,{ABSTRACT}\n")
    a, b, c = load_path(write(tmp_path / "export.csv", text)).papers
    assert (a.arxiv_id, a.record_id) == (None, "csv:W2741809807")
    assert (b.arxiv_id, b.record_id) == ("2406.01234", None)
    assert (c.arxiv_id, c.record_id) == (None, None)


def test_a_jsonl_id_that_is_not_an_arxiv_id_is_kept_as_the_record_id(tmp_path):
    rows = [{"id": "doc-17", "title": "A", "abstract": ABSTRACT},
            {"id": 17, "title": "B", "abstract": ABSTRACT},
            {"id": "arXiv:2406.01234v3", "title": "C", "abstract": ABSTRACT},
            {"id": 1706.03760, "title": "D", "abstract": ABSTRACT}]
    papers = load_path(write(tmp_path / "s.jsonl", "\n".join(map(json.dumps, rows)))).papers
    assert [(p.arxiv_id, p.record_id) for p in papers] == [
        (None, "jsonl:doc-17"), (None, "jsonl:17"), ("2406.01234", None), (None, None)]


# --- streaming: checked and counted first, then read a line at a time -------------------

@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "bom"])
def test_streamed_files_read_like_whole_ones(tmp_path, newline, bom):
    """JSON Lines and CSV stream line by line: the same papers, lines and skip reasons as
    a whole-text parse, whatever the line endings, and a record count up front."""
    from rag.sources import arxiv, csvfile, one_line, open_path, read_text

    rows = [json.dumps({"id": f"2401.0000{i}", "title": f"Widgets {i}", "abstract": ABSTRACT})
            for i in range(4)]
    jsonl = newline.join(rows[:2] + ["", "{broken"] + rows[2:]) + newline
    quoted = f'"Widgets 9","{ABSTRACT[:40]}{newline}{ABSTRACT[40:]}"'  # a cell over two lines
    csv_text = newline.join(["title,abstract,id", quoted, "Widgets 8,,W8",
                             f"Widgets 7,{ABSTRACT},W7"])
    for name, text, records, load in (("a.jsonl", jsonl, 5, arxiv.load),
                                      ("b.csv", csv_text, 3, csvfile.load)):
        path = write(tmp_path / name, bom + text.encode())
        stream = open_path(path)
        assert stream.streamed and stream.records == records
        papers = list(stream)
        whole = load(read_text(path), path.name)  # the whole-text parse of that format
        assert papers == whole.papers and stream.skipped
        assert stream.skipped == [one_line(reason) for reason in whole.skipped]
        assert list(stream) == papers  # each iteration reads the file again


def test_a_bad_byte_deep_in_a_streamed_file_is_found_before_any_record(tmp_path):
    line = json.dumps({"title": "Widgets", "abstract": ABSTRACT}) + "\n"
    data = line.encode() * 2000 + b'{"title": "Caf\xe9"}\n'
    from rag.sources import open_path

    with pytest.raises(SourceError, match=f"bad byte at offset {len(line) * 2000 + 14}"):
        open_path(write(tmp_path / "big.jsonl", data))


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_header_of_300k_columns_is_read_in_one_pass(tmp_path, where):
    """The column lookup was quadratic: 100k columns took 110 s, 1M never ended. (No time
    is asserted: the old code simply does not return for many minutes.)"""
    wide = [f"c{i}" for i in range(300_000)]
    names = ["title", "abstract", *wide] if where == "first" else [*wide, "title", "abstract"]
    pad = "" if where == "first" else "," * len(wide)
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + pad + "A Wide Paper,An abstract about columns.\n",
                    encoding="utf-8")
    result = load_path(path)
    assert [(p.title, p.abstract) for p in result.papers] == [
        ("A Wide Paper", "An abstract about columns.")]

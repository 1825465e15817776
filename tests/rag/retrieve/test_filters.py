"""Category and author filters (with dates and sources) over a real Chroma index of a
tiny arXiv metadata corpus: what each keeps, what an unmatched one says, and the CLI."""

from __future__ import annotations

import json

import pytest
from helpers import FILTERS_JSONL, filters_index, run_ask

from rag import QuestionError, parse_filters
from rag.authors import paper_matches, wanted

QUERY = "neural networks language models"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, embedder):
    return filters_index(tmp_path_factory.mktemp("filters") / "data", embedder)


def found(pipeline, **typed) -> set[int]:
    """The numbers (1..8) of the papers a search with these filters returns."""
    hits = pipeline.search(QUERY, 20, parse_filters(**typed))
    return {int(h.paper.paper_id[-1]) for h in hits}


@pytest.mark.parametrize(("name", "authors", "match"), [
    ("Hinton", "Geoffrey E. Hinton, Oriol Vinyals", True),
    ("hinton", "G. HINTON", True),
    ("Li", "Lin Wu, Xiao Chen", False),  # a whole word, not a substring
    ("Li", "Wei Li, Jun Zhu", True),
    ("Li", "Li Na", True),  # one word: any whole word of a name
    ("Li", "L. Wang", False),  # one word is a name, never an initial
    ("G. Hinton", "Geoffrey E. Hinton", True),
    ("Geoffrey Hinton", "G. Hinton and S. Sabour (Google)", True),
    ("Geoffrey Hinton", "Alex Graves, Geoffrey Smith, John Hinton", False),  # two people
    ("G. Hinton", "Jon Smith, Hinton Grey", False),  # another surname
    ("Hinton Grey", "Jon Smith, Hinton Grey", True),
    ("Geoffrey E. Hinton", "G. Hinton", False),  # no E
    ("G. E. Hinton", "Geoffrey Everest Hinton Jr.", True),
    ("E. G. Hinton", "Geoffrey Everest Hinton", False),  # the order of given names
    ("Muller", "Zoë Ó Briain, Jürgen Müller", True),
    ("ó briain", "Zoe O Briain", True),
    ("O'Brien", "J. OBrien", True),
    ("Google", "G. Hinton and S. Sabour (Google)", False),  # an affiliation, not a name
])
def test_author_names_match_whole_words_case_and_accents_aside(name, authors, match):
    assert paper_matches(wanted(name), authors) is match


def test_initials_alone_are_refused():
    for text in ("G. E.", "Hinton G.", "  "):
        with pytest.raises(ValueError, match="needs a name ending with a surname"):
            wanted(text)


@pytest.mark.parametrize(("typed", "papers"), [
    ({"authors": ["Hinton"]}, {1, 2, 6, 7}),
    ({"authors": ["G. Hinton"]}, {1, 2}),
    ({"authors": ["Geoffrey Hinton"]}, {1, 2}),
    ({"authors": ["Geoffrey E. Hinton"]}, {1}),  # three words: checked on the records
    ({"authors": ["John Hinton"]}, {7}),
    ({"authors": ["Li"]}, {3, 8}),
    ({"authors": ["MULLER"]}, {5}),
    ({"authors": ["Zoe O Briain", "Vinyals"]}, {1, 5}),  # repeated: any of them
    ({"categories": ["cs.CL"]}, {3, 4, 7, 8}),
    ({"categories": ["CS.cl"]}, {3, 4, 7, 8}),
    ({"categories": ["cs"]}, {1, 2, 3, 4, 7, 8}),  # the archive: every cs.*
    ({"categories": ["hep-th", "math.OC"]}, {5, 6}),
    ({"categories": ["stat.ML"], "authors": ["Hinton"]}, {1}),  # kinds combine
    ({"categories": ["cs.CL"], "since": "2024-01-08"}, {7, 8}),
    ({"authors": ["Hinton"], "until": "2024-01-03"}, {1, 2}),
    ({"authors": ["Li"], "sources": ["arxiv_filters"], "categories": ["cs.CL"]}, {3, 8}),
])
def test_filters_keep_the_papers_they_name(pipeline, typed, papers):
    assert found(pipeline, **typed) == papers


@pytest.mark.parametrize(("typed", "says"), [
    ({"categories": ["cs.XX"]}, "No indexed paper has category 'cs.XX'; `ask stats` lists"),
    ({"categories": ["cs.CL", "q-bio"]}, "category 'q-bio'"),
    ({"authors": ["Nobody"]}, "No indexed paper has an author named 'Nobody'"),
    ({"authors": ["Lin Li"]}, "author named 'Lin Li'"),  # both words exist, not in one name
    ({"authors": ["G."]}, "needs a name ending with a surname"),
])
def test_an_unmatched_filter_says_so_and_returns_nothing(pipeline, typed, says):
    for call in (lambda f: pipeline.search(QUERY, 5, f),
                 lambda f: pipeline.answer(QUERY, filters=f, use_llm=False)):
        with pytest.raises(QuestionError, match=says.replace("(", r"\(")):
            call(parse_filters(**typed))


def test_filters_that_match_apart_but_not_together_say_so(pipeline):
    together = parse_filters(categories=["hep-th"], authors=["Wei Li"], since="2024-01-01")
    says = ("No indexed paper matches these filters together: listed since 2024-01-01, "
            "category 'hep-th', author 'Wei Li'; `ask stats` lists")
    with pytest.raises(QuestionError) as err:
        pipeline.search(QUERY, 5, together)
    assert str(err.value).startswith(says)
    with pytest.raises(QuestionError, match="filters together"):
        pipeline.answer(QUERY, filters=together, use_llm=False)


def test_a_date_range_no_paper_is_listed_in_says_so(pipeline):
    """Issue 24: a filter that matches nothing says so (it was "no paper matched the
    question", as if the question had found nothing), never an unfiltered answer."""
    empty = parse_filters(since="2023-03-01", until="2023-03-31")
    with pytest.raises(QuestionError) as err:
        pipeline.search(QUERY, 5, empty)
    assert str(err.value).startswith(
        "No indexed paper matches these filters: listed since 2023-03-01, listed until "
        "2023-03-31; `ask stats` lists the listing dates")
    with pytest.raises(QuestionError, match="matches these filters"):
        pipeline.answer(QUERY, filters=empty, use_llm=False)


# One more paper, in a CSV with a categories column (paper 9).
MORE_CSV = ("id,title,abstract,authors,categories\n"
            "2402.00009,Protein folding with equivariant networks,"
            "\"Equivariant graph networks predict protein structures from sequences, "
            "improving accuracy on held-out protein families.\","
            "\"Ana Núñez, Wei Li\",\"q-bio.BM; cs.LG\"\n")


def test_new_papers_and_their_categories_are_filterable_after_an_ingest(tmp_path, embedder):
    """The facets follow the index: a CSV with a categories column adds a category, and a
    new process (the facets loaded from the cache) sees the same."""
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    pipe = filters_index(tmp_path / "data", embedder)
    csv = tmp_path / "more.csv"
    csv.write_text(MORE_CSV)
    assert pipe.ingest([csv]).added == 1
    assert pipe.stats()["categories"]["q-bio.BM"] == 1
    again = Pipeline(Settings(data_dir=tmp_path / "data", _env_file=None), embedder=embedder)
    for p in (pipe, again):
        hits = p.search(QUERY, 20, parse_filters(categories=["q-bio"], authors=["nunez"]))
        assert [h.paper.paper_id for h in hits] == ["2402.00009"]
        assert hits[0].paper.categories == "q-bio.BM cs.LG"


def test_a_sync_brings_the_saved_authors_and_categories_up_to_date(tmp_path, embedder):
    """After an ingest the authors and categories are brought up to date from the records
    the catch-up read (no recount of every record), and equal a recount: a new paper's
    keys come in, a paper written again loses its old ones."""
    import json as jsonlib

    from rag.store.cache import PEOPLE, facets_key, people

    pipe = filters_index(tmp_path / "data", embedder)
    assert found(pipe, categories=["hep-th"]) == {6}  # counted once, and saved
    csv = tmp_path / "more.csv"
    csv.write_text(MORE_CSV)
    assert pipe.ingest([csv]).added == 1
    store = pipe.store
    folder, key = store.lexical_folder, facets_key(store.index)
    assert jsonlib.loads((folder / PEOPLE).read_text())["key"] == key  # brought up to date
    kept = pipe.searcher().facets
    fresh = people(store.index, tmp_path / "recount", key)
    assert kept.category_counts() == {c: n for c, n in sorted(
        fresh.categories.items(), key=lambda kv: (-kv[1], kv[0]))}
    for name in ("nunez", "li", "wei~li", "#q-bio", "#cs.lg", "#hep-th", "hinton"):
        assert kept.postings.papers_of(name) == fresh.postings.papers_of(name), name
    assert found(pipe, categories=["q-bio"], authors=["Núñez"]) == {9}
    # The same paper listed again with other authors: its old keys go.
    csv.write_text(csv.read_text().replace("Ana Núñez, Wei Li", "Ana Núñez"))
    assert pipe.ingest([csv]).updated == 1
    kept = pipe.searcher().facets
    assert "2402.00009" not in kept.postings.papers_of("wei~li")
    assert "2402.00009" in kept.postings.papers_of("nunez")
    fresh = people(store.index, tmp_path / "recount2", facets_key(store.index))
    for name in ("nunez", "li", "wei~li", "#q-bio", "#cs.lg"):
        assert kept.postings.papers_of(name) == fresh.postings.papers_of(name), name


def test_cli_filters_and_stats(pipeline):
    env = {"ABSTRACTA_DATA_DIR": str(pipeline.settings.data_dir)}
    res = run_ask("search", "--json", "-k", "10", "--category", "cs.CL", "--author", "Li",
                  "language", env=env)
    assert res.returncode == 0, res.stderr
    assert {h["paper_id"] for h in json.loads(res.stdout)} == {"2401.00003", "2401.00008"}
    res = run_ask("--category", "cs.XX", "--offline", "which models translate?", env=env)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "No indexed paper has category 'cs.XX'; `ask stats` lists the categories" in (
        res.stdout + res.stderr)
    assert "[1]" not in res.stdout  # nothing answered
    stats = run_ask("stats", env=env)
    assert stats.returncode == 0, stats.stderr
    lines = stats.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("Categories (8")))
    assert lines[at + 1].split() == ["4", "cs.CL"]  # most papers first


def test_filters_jsonl_is_the_fixture_the_tests_describe():
    rows = [json.loads(line) for line in FILTERS_JSONL.read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"2401.0000{i}" for i in range(1, 9)]


def test_new_listings_of_the_same_papers_keep_their_authors_and_categories(tmp_path, embedder):
    """The same file again under another name: new listings only (the facets are counted
    again from the paper records, BM25 stays), and every filter still holds."""
    pipe = filters_index(tmp_path / "data", embedder)
    again = tmp_path / "again.jsonl"
    again.write_bytes(FILTERS_JSONL.read_bytes())
    report = pipe.ingest([again])
    assert report.added == 0 and report.updated == 8
    assert found(pipe, sources=["again"], authors=["G. Hinton"], categories=["cs"]) == {1, 2}
    assert pipe.stats()["categories"]["cs.CL"] == 4


def test_postings_round_trip(tmp_path):
    from rag.store.postings import Postings, PostingsBuilder, category_keys

    builder = PostingsBuilder()
    builder.add("2401.00001", {"li", "wei", "wei~li", "w*~li"})
    builder.add("csv:Zoë", {"li", "na"} | category_keys("cs.CL stat.ML"))
    builder.add("2401.00003", set())  # no authors: filed under nothing
    built = builder.build()
    built.save(tmp_path / "authors")
    loaded = Postings.load(tmp_path / "authors")
    assert loaded is not None and len(loaded) == 9
    for postings in (built, loaded):
        assert postings.papers_of("li") == {"2401.00001", "csv:Zoë"}
        assert postings.papers_of("w*~li") == {"2401.00001"}
        assert postings.papers_of("lin") == set()
        assert postings.papers_of("#stat") == postings.papers_of("#cs.cl") == {"csv:Zoë"}
    assert Postings.load(tmp_path / "missing") is None
    assert Postings.empty().papers_of("li") == set()


def test_a_cache_from_before_the_filters_is_counted_again(tmp_path, embedder):
    """An index cached by an older version (no author/category postings): the next
    process that filters counts them again, once, and saves them."""
    import json as jsonlib
    import shutil

    from rag.pipeline import Pipeline
    from rag.settings import Settings
    from rag.store.cache import PEOPLE, POSTINGS

    first = filters_index(tmp_path / "data", embedder)
    folder = first.store.lexical_folder
    assert found(first, categories=["hep-th"]) == {6}
    shutil.rmtree(folder / POSTINGS)
    (folder / PEOPLE).unlink()
    again = Pipeline(Settings(data_dir=tmp_path / "data", _env_file=None), embedder=embedder)
    assert found(again, categories=["hep-th"], authors=["Hinton"]) == {6}
    assert (folder / POSTINGS).is_dir() and "categories" in jsonlib.loads(
        (folder / PEOPLE).read_text())

"""Related papers: ``Pipeline.paper``, ``Pipeline.similar`` and ``ask similar`` on the real
bundled index (MiniLM, embedded Chroma)."""

from __future__ import annotations

import json

import pytest
from helpers import run_ask

import rag

GQSA = "GQSA: Group Quantization and Sparsity for Accelerating Large Language Model Inference"


def _gqsa(pipeline) -> rag.StoredPaper:
    return pipeline.paper(GQSA)


def test_paper_by_id_and_by_exact_title_is_the_same_record(bundled_pipeline):
    by_title = _gqsa(bundled_pipeline)
    assert by_title.title == GQSA and by_title.abstract.startswith("Model compression")
    assert bundled_pipeline.paper(by_title.paper_id) == by_title
    # The title as normalize_title compares it: case, punctuation and spacing do not matter.
    assert bundled_pipeline.paper("  gqsa   group quantization and sparsity for accelerating "
                                  "large language model inference ") == by_title
    out = rag.paper_to_dict(by_title)
    assert json.loads(json.dumps(out)) == out
    assert out["paper_id"] == by_title.paper_id and out["abstract"] == by_title.abstract


@pytest.mark.parametrize("ref", ["no such paper at all", "t:0000000000000000", "GQSA", " "])
def test_an_unknown_paper_is_a_one_line_error(bundled_pipeline, ref):
    with pytest.raises(rag.UnknownPaperError) as err:
        bundled_pipeline.paper(ref)
    assert "\n" not in str(err.value)
    with pytest.raises(rag.UnknownPaperError):
        bundled_pipeline.similar(ref)


def test_similar_papers_are_others_ranked_by_similarity(bundled_pipeline):
    gqsa = _gqsa(bundled_pipeline)
    hits = bundled_pipeline.similar(gqsa.paper_id, 8)
    assert len(hits) == 8
    ids = [h.paper.paper_id for h in hits]
    assert gqsa.paper_id not in ids and len(set(ids)) == 8
    assert [h.rank for h in hits] == list(range(1, 9))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    # The neighbours of a quantization paper are about compressing models.
    compression = ("quant", "sparsit", "compress", "prun", "precision")
    assert sum(any(w in h.paper.title.lower() + h.paper.abstract.lower() for w in compression)
               for h in hits[:4]) >= 3
    # The exact title names the same paper: the same neighbours.
    assert [h.paper.paper_id for h in bundled_pipeline.similar(GQSA, 8)] == ids


def test_similar_respects_the_filters(bundled_pipeline):
    gqsa = _gqsa(bundled_pipeline)
    assert gqsa.dates == ("--08-13",)
    march = rag.parse_filters(since="03-01", until="03-31")
    hits = bundled_pipeline.similar(gqsa.paper_id, 5, march)
    assert len(hits) == 5
    assert all(any(d[-5:-3] == "03" for d in h.paper.dates) for h in hits)
    assert all(march.keeps_dates(h.paper.dates) for h in hits)
    unfiltered = [h.paper.paper_id for h in bundled_pipeline.similar(gqsa.paper_id, 20)]
    # Filtering keeps the order among the papers it keeps.
    kept = [p for p in unfiltered if p in {h.paper.paper_id for h in hits}]
    assert kept == [h.paper.paper_id for h in hits][:len(kept)]
    source = rag.parse_filters(sources=["003_"])
    assert all(any(s.startswith("003_") for s in h.paper.sources)
               for h in bundled_pipeline.similar(gqsa.paper_id, 5, source))
    # A filter that keeps no paper says so.
    with pytest.raises(rag.QuestionError, match="No indexed paper matches these filters"):
        bundled_pipeline.similar(gqsa.paper_id, 5, rag.parse_filters(since="12-30"))


def test_ask_similar_prints_the_neighbours(bundled_dir):
    env = {"ABSTRACTA_DATA_DIR": str(bundled_dir)}
    res = run_ask("similar", "--json", "-k", "3", GQSA, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["paper"]["title"] == GQSA
    assert len(out["similar"]) == 3
    assert out["paper"]["paper_id"] not in {s["paper_id"] for s in out["similar"]}
    assert [s["rank"] for s in out["similar"]] == [1, 2, 3]
    text = run_ask("similar", "-k", "2", "--source", "003_", out["paper"]["paper_id"], env=env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"Papers like: {GQSA}")
    assert text.stdout.count("003_30f78c25dce070b4.txt") == 2


def test_ask_similar_of_an_unknown_paper_fails_in_one_line(bundled_dir):
    res = run_ask("similar", "No Such Paper", env={"ABSTRACTA_DATA_DIR": str(bundled_dir)})
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().startswith("Error: No indexed paper has the id or exact title")
    assert len(res.stderr.strip().splitlines()) == 1

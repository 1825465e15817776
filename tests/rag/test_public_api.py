"""The public API in rag/__init__.py: the exported names, cheap import, and the
``answer_to_dict`` contract on a real answer."""

from __future__ import annotations

import json
import subprocess
import sys

import rag

PUBLIC = {
    "Pipeline", "Settings", "load_settings", "Answer", "Hit", "Citation", "StoredPaper",
    "Filters", "Conversation", "IngestReport", "answer_to_dict", "hit_to_dict", "paper_to_dict",
    "parse_filters", "Event", "Waiting", "Token", "Note", "Done", "normalize_title",
    "display_safe", "display_date", "split_citations",
    "citing_sentences", "supporting_sentences", "openai_client", "ask_model", "BUNDLED_CORPUS",
    "expand_paths", "load_path", "Searcher", "Candidate", "clean_question",
    "answer_markdown", "hits_markdown", "papers_bibtex", "cited_papers",
    "AbstractaError", "SettingsError", "SourceError", "StoreError", "EmbeddingMismatchError",
    "EmbedderError", "LLMError", "LLMConfigError", "QuestionError", "UnknownPaperError",
}


def test_exported_names_are_pinned():
    # Adding or removing a public name is an API change: update this set on purpose.
    assert set(rag.__all__) == PUBLIC
    assert len(rag.__all__) == len(PUBLIC)


def test_every_exported_name_resolves():
    for name in rag.__all__:
        assert getattr(rag, name) is not None, name
    from rag import errors, pipeline, settings

    assert rag.Pipeline is pipeline.Pipeline
    assert rag.load_settings is settings.load_settings
    assert issubclass(rag.EmbeddingMismatchError, rag.StoreError)
    assert all(issubclass(getattr(rag, n), errors.AbstractaError)
               for n in rag.__all__ if n.endswith("Error"))


def test_unknown_name_is_an_attribute_error():
    try:
        rag.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("rag.NoSuchThing resolved")


def test_import_rag_is_cheap():
    """`import rag` (and so `ask --help`) loads no heavy library."""
    heavy = ["chromadb", "onnxruntime", "gradio", "llama_index", "numpy", "pydantic",
             "tokenizers", "openai", "numba"]
    code = (
        "import sys, json, rag\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_answer_to_dict_is_the_json_contract(bundled_pipeline):
    answer = bundled_pipeline.answer(
        "Which paper combines group quantization with structured sparsity to speed up LLM "
        "inference?", use_llm=False)
    out = rag.answer_to_dict(answer)
    assert json.loads(json.dumps(out)) == out  # plain JSON types only
    assert out["schema_version"] == 1
    assert out["question"] == answer.question and out["answer"] == answer.text
    assert [s["rank"] for s in out["sources"]] == list(range(1, len(answer.hits) + 1))
    assert out["sources"][0] == rag.hit_to_dict(answer.hits[0])
    assert "GQSA" in out["sources"][0]["title"]
    assert {c["paper_id"] for c in out["citations"]} <= {s["paper_id"] for s in out["sources"]}
    assert out["citations"], "the offline answer cites the GQSA paper"


def test_the_pipeline_describes_its_index_without_reaching_into_the_store(bundled_pipeline):
    """What the UI, eval and benchmarks read goes through Pipeline methods."""
    stats = bundled_pipeline.stats()
    papers = bundled_pipeline.papers()
    assert len(papers) == bundled_pipeline.count_papers() == stats["papers"] > 300
    assert bundled_pipeline.count_chunks() == stats["chunks"] > len(papers)
    assert bundled_pipeline.location == stats["location"]
    assert not bundled_pipeline.needs_corpus() and bundled_pipeline.read_only_note == ""
    alone = bundled_pipeline.searcher().rankings("group quantization with structured sparsity", 20)
    assert set(alone) == {"dense", "lexical"} and all(alone.values())

"""AbstractaRetriever in a real llama-index query engine: Abstracta's retrieval over
the bundled index (real MiniLM, real Chroma), llama-index's real response synthesis,
and llama-index's MockLLM as the local model (it echoes the prompt it is given, so
what the synthesizer put in front of the model can be checked)."""

from __future__ import annotations

import pytest
from llama_index.core import Settings as LlamaSettings
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

from rag import Filters
from rag.integrations.llama_index import AbstractaRetriever

GQSA_QUESTION = ("Which paper combines group quantization with structured sparsity to speed up "
                 "LLM inference?")


def test_query_engine_cites_the_right_paper(bundled_pipeline, netguard_log):
    llm_before = LlamaSettings._llm
    engine = RetrieverQueryEngine.from_args(AbstractaRetriever(bundled_pipeline), llm=MockLLM())
    response = engine.query(GQSA_QUESTION)

    top = response.source_nodes[0]
    assert top.node.metadata["title"].startswith("GQSA")
    assert top.node.node_id == top.node.metadata["paper_id"]
    # The synthesizer really ran: the echoed prompt holds the retrieved abstract and the
    # question, and no metadata but the date was put in front of the model.
    abstract = bundled_pipeline.search(GQSA_QUESTION, 1)[0].paper.abstract
    assert abstract[:80] in str(response)
    assert GQSA_QUESTION in str(response)
    assert "paper_id:" not in str(response) and "relevance:" not in str(response)
    assert LlamaSettings._llm is llm_before  # no global llama-index state set
    assert not netguard_log.exists()  # no network (tokenizer files, default models)


def test_one_node_per_paper_with_fused_scores(bundled_pipeline):
    nodes = AbstractaRetriever(bundled_pipeline, k=8).retrieve("speculative decoding draft model")
    hits = bundled_pipeline.search("speculative decoding draft model", 8)
    assert len(nodes) == 8
    assert [n.node.node_id for n in nodes] == [h.paper.paper_id for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    assert [n.node.metadata["rank"] for n in nodes] == list(range(1, 9))  # Abstracta's order
    for n, h in zip(nodes, hits, strict=False):
        meta = n.node.metadata
        assert n.node.get_content() == f"{h.paper.title}\n\n{h.paper.abstract}"
        assert meta["dates"] == list(h.paper.dates) and meta["date"] == h.paper.date
        assert meta["sources"] == list(h.paper.sources) and meta["source"] == h.paper.sources[0]
        assert meta["url"] == h.paper.link and 0 <= meta["relevance"] <= 1


def test_filters_restrict_the_papers(bundled_pipeline):
    source = "000_b88a07071653e565.txt"
    nodes = AbstractaRetriever(bundled_pipeline, k=5, filters=Filters(sources=(source,))).retrieve(
        "quantization")
    assert nodes and all(source in n.node.metadata["sources"] for n in nodes)


def test_pipeline_and_settings_are_exclusive(bundled_pipeline):
    with pytest.raises(ValueError, match="not both"):
        AbstractaRetriever(bundled_pipeline, settings=bundled_pipeline.settings)

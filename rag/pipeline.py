"""The pipeline in one object: the backends built once from Settings, and the
stages (ingest, search, answer) called in order.

The CLI, the UI and the eval harness each build one ``Pipeline`` and call it;
backends are built lazily (``ask stats`` never loads the embedding model) and
can be passed in explicitly (tests pass their own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rag.answer import answer_offline
from rag.chat import (
    Conversation,
    Subject,
    evidence,
    load_followup_rule,
    paper_idf_ratio,
    subject,
    with_subject,
)
from rag.embed import Embedder, build_embedder
from rag.ingest import BUNDLED_CORPUS, IngestReport, ensure_bundled_corpus, ingest_paths
from rag.retrieve import Filters, clean_question_with_note, search
from rag.settings import Settings
from rag.store import Store, open_store
from rag.types import Answer, Hit

OnToken = Callable[[str], None]


class Pipeline:
    def __init__(self, settings: Settings, *, store: Store | None = None,
                 embedder: Embedder | None = None, llm=None):
        self.settings = settings
        self._store = store
        self._embedder = embedder
        self._llm = llm
        self._lock = threading.Lock()
        self._paper_count: tuple[str | None, int] = (None, 0)  # (lexical generation, papers)

    # --- backends (built on first use, in one place) -----------------------------------
    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings)
            return self._store

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = build_embedder(self.settings)
            return self._embedder

    @property
    def llm(self):
        """The LLM client, or None when answering offline."""
        if not self.settings.llm_configured:
            return None
        with self._lock:
            if self._llm is None:
                from rag.llm import openai_client

                self._llm = openai_client(self.settings)
            return self._llm

    @property
    def answerer_name(self) -> str:
        return f"llm:{self.settings.llm_model}" if self.settings.use_llm else "offline"

    def embedder_name(self) -> str:
        return self.store.embed_model or {
            "minilm": "all-MiniLM-L6-v2-onnx-int8", "wordllama": "wordllama-l2-supercat-256",
        }.get(self.settings.embedder, f"openai:{self.settings.openai_embedding_model}")

    # --- stages -----------------------------------------------------------------------
    def ingest(self, paths: list[Path], progress=None, rebuild: bool = False, *,
               wait: bool = True, on_wait=None) -> IngestReport:
        """Add files to the index, holding its write lock (rag/lock.py): another writer is
        waited for (``on_wait`` is told who it is), or with ``wait=False`` refused."""
        return ingest_paths(paths, self.settings, self.store, self.embedder, progress,
                            rebuild=rebuild, wait=wait, on_wait=on_wait)

    def ensure_corpus(self, progress=None, *, on_wait=None) -> IngestReport | None:
        """First use: ingest the bundled corpus into an empty index."""
        return ensure_bundled_corpus(self.settings, self.store, self.embedder, progress,
                                     on_wait=on_wait)

    def search(self, question: str, k: int | None = None, filters: Filters | None = None,
               timings: dict | None = None) -> list[Hit]:
        self.store.check_model(self.embedder.name, self.embedder.dim)
        return search(question, self.settings, self.store, self.embedder, k, filters, timings)

    def answer(self, question: str, *, k: int | None = None, filters: Filters | None = None,
               conversation: Conversation | None = None, use_llm: bool | None = None,
               on_token: OnToken | None = None,
               on_wait: Callable[[], None] | None = None) -> Answer:
        """Answer one question (a follow-up when ``conversation`` has turns).

        ``on_wait`` is called when a request goes to the LLM (the CLI and the UI then show
        "Waiting for the model" until the first token reaches ``on_token``).
        """
        t0 = time.perf_counter()
        # One LLM budget for the whole answer, from its first request: the follow-up rewrite
        # and the answer share it (None: the answer's request starts it).
        deadline: float | None = None
        question, note = clean_question_with_note(question)
        use_llm = self.settings.use_llm if use_llm is None else use_llm
        timings: dict = {}
        llm = self.llm if use_llm else None
        standalone = question
        if use_llm and llm is None:
            note = " ".join(filter(None, (note, "No LLM is configured (set OPENAI_API_KEY or "
                                               "OPENAI_BASE_URL); this is the offline answer.")))
        hits: list[Hit] | None = None
        followup = False
        about = subject(conversation)  # None: a first turn, or a turn after an abstention
        if about is not None:
            if llm is not None:
                deadline = time.monotonic() + self.settings.llm_budget
                standalone = self._condense_llm(question, conversation, llm, deadline, on_wait)
            if standalone == question:
                standalone, hits, followup = self._followup_offline(
                    question, about, k, filters, timings)
        t1 = time.perf_counter()
        if hits is None:
            hits = self.search(standalone, k, filters, timings)
        t2 = time.perf_counter()
        result = None
        if llm is not None:
            from rag.errors import LLMConfigError, LLMError
            from rag.llm import answer_llm

            try:
                result = answer_llm(question if standalone == question else standalone, hits,
                                    self.settings, llm, on_token=on_token, deadline=deadline,
                                    on_wait=on_wait)
            except LLMConfigError:
                raise
            except LLMError as exc:
                note = " ".join(filter(None, (
                    note, f"The LLM could not answer ({exc}); this is the offline answer.")))
        if result is None:
            result = self._answer_offline(question, standalone, hits, followup)
            if on_token is not None:
                on_token(result.text)
        t3 = time.perf_counter()
        timings.update(condense=(t1 - t0) * 1000, retrieve=(t2 - t1) * 1000,
                       answer=(t3 - t2) * 1000, total=(t3 - t0) * 1000)
        result = replace(result, question=question,
                         note=" ".join(filter(None, (note, result.note))),
                         standalone_question=standalone if standalone != question else "",
                         timings_ms={k_: round(v, 2) for k_, v in timings.items()})
        if conversation is not None:
            conversation.add(question, result)
        return result

    def _followup_offline(self, question: str, about: Subject, k, filters, timings):
        """(query, hits, is a follow-up): the turn searched alone and with the previous
        subject; the subject is kept only when the evidence says the turn leans on it
        (:class:`rag.chat.FollowupRule`)."""
        feats, alone, joined, joined_question = self.followup_evidence(
            question, about, k, filters, timings)
        if load_followup_rule(self.settings.embedder).is_followup(feats):
            return joined_question, joined, True
        return question, alone, False

    def followup_evidence(self, question: str, about: Subject, k=None, filters=None,
                          timings=None):
        """(features, hits alone, hits with the subject, the question with the subject):
        what :class:`rag.chat.FollowupRule` decides on (eval/calibrate.py fits it on these)."""
        from rag.text import terms

        alone = self.search(question, k, filters, timings)
        joined_question = with_subject(question, about.title)
        joined = self.search(joined_question, k, filters)
        paper = self.store.get_papers([about.paper_id]).get(about.paper_id) \
            if about.paper_id else None
        subject_terms = set(terms(f"{paper.title} {paper.abstract}" if paper else about.title))
        lex = self.store.lexical()
        ratio = paper_idf_ratio(lex, self._papers_in(lex))
        feats = evidence(alone, joined, question, subject_terms, ratio)
        return feats, alone, joined, joined_question

    def _papers_in(self, lex) -> int:
        """Papers in the lexical index, counted once per index generation."""
        if lex is None:
            return 0
        if self._paper_count[0] != lex.generation:
            self._paper_count = (lex.generation, len(set(lex.paper_ids.tolist())))
        return self._paper_count[1]

    def _answer_offline(self, question: str, standalone: str, hits: list[Hit],
                        followup: bool) -> Answer:
        """The extractive answer, told which question words no indexed paper contains and
        how rare each word is in the index (sentences are matched on the rare ones)."""
        from rag.retrieve import unknown_terms
        from rag.text import terms

        lex = self.store.lexical()
        weights = {t: lex.idf(t) for t in terms(question)} if lex is not None else None
        return answer_offline(standalone, hits, self.settings.abstain_threshold, focus=question,
                              unknown=unknown_terms(question, self.store), weights=weights,
                              followup=followup)

    def _condense_llm(self, question, conversation, llm, deadline=None, on_wait=None):
        from rag.errors import LLMConfigError, LLMError
        from rag.llm import condense

        try:
            return condense(question, conversation, self.settings, llm, deadline=deadline,
                            on_wait=on_wait)
        except LLMConfigError:
            raise
        except LLMError:  # the offline rewrite below takes over
            return question

    # --- description ------------------------------------------------------------------
    def stats(self) -> dict:
        store = self.store
        sources: dict[str, int] = {}
        dates: set[str] = set()
        n = 0
        for paper in store.iter_papers():
            n += 1
            dates.update(paper.dates)
            for s in paper.sources:
                sources[s] = sources.get(s, 0) + 1
        return {
            "papers": n,
            "chunks": store.count_chunks(),
            "sources": dict(sorted(sources.items())),
            "dates": sorted(dates),
            "embedding_model": store.embed_model or f"(none yet; will use {self.embedder_name()})",
            "answerer": self.answerer_name,
            "location": store.location,
            "mode": "chroma server" if self.settings.chroma_url else "embedded",
            "bundled_corpus": str(BUNDLED_CORPUS),
        }

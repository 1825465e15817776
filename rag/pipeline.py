"""The pipeline in one object: the backends built once from Settings, and the
stages (ingest, search, answer) called in order.

The CLI, the UI and the eval harness each build one ``Pipeline`` and call it;
backends are built lazily (``ask stats`` never loads the embedding model) and
can be passed in explicitly (tests pass their own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from rag.answer import answer_offline
from rag.chat import Conversation, Subject, followup_evidence, load_followup_rule, subject
from rag.dates import parse_date
from rag.embed import Embedder, build_embedder, embedder_model_name
from rag.ingest import (
    BUNDLED_CORPUS,
    IngestReport,
    ensure_bundled_corpus,
    ingest_paths,
    needs_bundled_corpus,
    unfinished_bundled_corpus,
)
from rag.llm.events import Done, Event, Note, Token, Waiting, drain
from rag.retrieve import (
    Filters,
    Searcher,
    build_searcher,
    clean_question,
    clean_question_with_note,
    snapshot,
)
from rag.settings import Settings
from rag.store import Store, open_store
from rag.types import Answer, Hit, StoredPaper

OnLockWait = Callable[[str], None]  # told once who holds the write lock this ingest waits for
Progress = Callable[[int, int], None]  # (papers done, papers to embed)


@dataclass(frozen=True)
class _Turn:
    """What one turn searches: the standalone question, the hits when the follow-up check
    already searched, whether it leans on the previous subject, and the LLM's deadline."""

    standalone: str
    hits: list[Hit] | None = None
    followup: bool = False
    deadline: float | None = None


def _joined(*notes: str) -> str:
    """Notes combine instead of replacing each other."""
    return " ".join(filter(None, notes))


def parse_filters(since: str | None = None, until: str | None = None,
                  sources=(), categories=(), authors=()) -> Filters:
    """Filters from what a user typed: dates as 2024-08-13, Aug 13 or 08-13 (blank: none),
    source-file substrings, arXiv categories ("cs.CL", or "cs" for every cs.*), author
    names ("Hinton", "G. Hinton"); blank values are ignored. Raises ValueError naming a
    date it cannot read."""
    def kept(values) -> tuple[str, ...]:
        return tuple(v.strip() for v in values or () if v and v.strip())

    return Filters(since=parse_date(since) if since and since.strip() else None,
                   until=parse_date(until) if until and until.strip() else None,
                   sources=tuple(sources or ()), categories=kept(categories),
                   authors=kept(authors))


class Pipeline:
    def __init__(self, settings: Settings, *, store: Store | None = None,
                 embedder: Embedder | None = None, llm=None):
        self.settings = settings
        self._store = store
        self._embedder = embedder
        self._llm = llm
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None  # the current generation's (see searcher())

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
                from rag.openai_server import openai_client

                self._llm = openai_client(self.settings)
            return self._llm

    @property
    def answerer_name(self) -> str:
        return f"llm:{self.settings.llm_model}" if self.settings.use_llm else "offline"

    def embedder_name(self) -> str:
        """The model the index was built with, or else the configured one."""
        return self.store.embed_model or embedder_model_name(self.settings)

    # --- the index, described (what the UI, eval and benchmarks read) ----------------------
    @property
    def location(self) -> str:
        """Where the index lives: its folder, or the Chroma server's URL."""
        return self.store.location

    @property
    def read_only_note(self) -> str:
        """Why this index refuses writes (a read-only folder, a full disk), or ""."""
        return self.store.read_only

    def needs_corpus(self) -> bool:
        """Is this a first use, that :meth:`ensure_corpus` will fill with the bundled corpus?
        (The one auto-ingest check: the CLI, the UI and ``ask eval`` ask it.)"""
        return needs_bundled_corpus(self.settings, self.store)

    def unfinished_corpus(self) -> tuple[int, int] | None:
        """(papers indexed, papers in it) when a first run's bundled corpus was started and
        never finished (an interrupted first run), else None."""
        return unfinished_bundled_corpus(self.store)

    def papers(self) -> list[StoredPaper]:
        """Every indexed paper (the Library tab, the eval's gold titles)."""
        return list(self.store.iter_papers())

    def paper(self, ref: str) -> StoredPaper:
        """The indexed paper with this id (``2406.01234``, ``arXiv:2406.01234v2`` or its
        arxiv.org link, ``csv:W27``), else the one with this exact title (compared as
        :func:`rag.identity.normalize_title` writes it). Raises UnknownPaperError naming
        the reference (or the ids, when several papers share the title)."""
        from rag.errors import UnknownPaperError
        from rag.identity import normalize_arxiv_id, title_key

        ref = " ".join(str(ref).split())
        if not ref:
            raise UnknownPaperError("Name a paper: its id (as `ask search` shows it) or its "
                                    "exact title.")
        ids = list(dict.fromkeys(filter(None, [ref, normalize_arxiv_id(ref)])))
        found = self.store.get_papers(ids)
        if not found:
            titled = self.store.ids_by_title_key([title_key(ref)]).get(title_key(ref), [])
            found = self.store.get_papers(titled)
        if len(found) > 1 and ref not in found:
            raise UnknownPaperError(
                f"{len(found)} indexed papers have the title {ref[:120]!r}: name one by its id "
                f"({', '.join(sorted(found))}).")
        if not found:
            raise UnknownPaperError(
                f"No indexed paper has the id or exact title {ref[:120]!r}; `ask search` "
                "shows papers with their ids.")
        return found[ref] if ref in found else next(iter(found.values()))

    def similar(self, ref: str, k: int | None = None,
                filters: Filters | None = None) -> list[Hit]:
        """The ``k`` indexed papers nearest to the paper ``ref`` names (an id or an exact
        title, see :meth:`paper`), by their stored vectors, the paper itself left out,
        within ``filters``. Raises UnknownPaperError for an unknown paper."""
        paper = self.paper(ref)
        return self.searcher().similar(paper.paper_id, k, filters)

    def count_papers(self) -> int:
        return self.store.count_papers()

    def count_chunks(self) -> int:
        """Embedded chunks in the index (what a benchmark reports next to its timings)."""
        return self.store.count_chunks()

    # --- stages -----------------------------------------------------------------------
    def ingest(self, paths: list[Path], progress: Progress | None = None, rebuild: bool = False,
               *, wait: bool = True, on_lock_wait: OnLockWait | None = None) -> IngestReport:
        """Add files to the index, holding its write lock (rag/lock.py): another writer is
        waited for (``on_lock_wait`` is told who it is, once), or with ``wait=False``
        refused."""
        return ingest_paths(paths, self.settings, self.store, self.embedder, progress,
                            rebuild=rebuild, wait=wait, on_lock_wait=on_lock_wait)

    def ensure_corpus(self, progress: Progress | None = None, *,
                      on_lock_wait: OnLockWait | None = None) -> IngestReport | None:
        """First use: ingest the bundled corpus into an empty index (None: nothing to do)."""
        return ensure_bundled_corpus(self.settings, self.store, self.embedder, progress,
                                     on_lock_wait=on_lock_wait)

    def sync(self, feeds: list, progress: Progress | None = None, *,
             on_lock_wait: OnLockWait | None = None):
        """Fetch the feeds' new pages and ingest them (:mod:`rag.feeds.sync`); the index
        and the embedder are opened only once there is something to write."""
        from rag.feeds.sync import run_sync, sync_ingest

        def ingest(papers: list) -> IngestReport:
            return sync_ingest(self.settings, self.store, self.embedder, progress,
                               on_lock_wait)(papers)

        return run_sync(feeds, self.settings, ingest, lambda: self.store)

    def new_papers(self, since: str | None = None, categories: tuple[str, ...] = (),
                   limit: int | None = None) -> list[StoredPaper]:
        """Papers the feeds listed, newest first (`ask new`, :mod:`rag.feeds.new`)."""
        from rag.feeds.new import new_papers

        return new_papers(self.store, since, categories, limit)

    def sync_status(self) -> dict[str, dict]:
        """Each feed's last sync, by name (:func:`rag.feeds.new.sync_status`)."""
        from rag.feeds.new import sync_status

        return sync_status(self.settings)

    def searcher(self, settings: Settings | None = None) -> Searcher:
        """The searcher of the index's current generation: built when the generation (or
        the listings) moved since the last question, else the one held. One call per
        question is its one generation check. ``settings`` (a grid search over depths
        and weights) builds a separate one over the same snapshot."""
        store, embedder = self.store, self.embedder
        snap = snapshot(store)
        if settings is not None:
            return build_searcher(settings, store, embedder, snap)
        held = self._searcher
        if held is not None and held.lexical is snap.lexical and held.facets is snap.facets:
            return held
        # The model is checked once per generation: only a rebuild (a new generation) can
        # change the model an index was built with.
        store.check_model(embedder.name, embedder.dim)
        self._searcher = build_searcher(self.settings, store, embedder, snap)
        return self._searcher

    def search(self, question: str, k: int | None = None, filters: Filters | None = None,
               timings: dict | None = None) -> list[Hit]:
        return self.searcher().search(clean_question(question), k, filters, timings)

    def stream(self, question: str, *, k: int | None = None, filters: Filters | None = None,
               conversation: Conversation | None = None,
               use_llm: bool | None = None) -> Iterator[Event]:
        """Answer one question (a follow-up when ``conversation`` has turns), as events:
        ``Waiting`` each time a request goes to the LLM (the follow-up's rewrite, the
        answer), ``Token``s of the answer text as it may be shown (the offline answer is
        one Token; after a failed LLM answer, the offline one follows what streamed),
        ``Note``s as they arise (each is also in the answer's ``note``), and last
        ``Done(answer)``, with ``conversation`` already updated.

        Errors (a refused question, a rejected LLM key) are raised by the iterator.
        Stopping early closes the LLM's HTTP stream; the conversation is then unchanged.
        """
        answer = yield from self._events(question, k, filters, conversation, use_llm,
                                         tokens=True)
        yield Done(answer)

    def answer(self, question: str, *, k: int | None = None, filters: Filters | None = None,
               conversation: Conversation | None = None,
               use_llm: bool | None = None) -> Answer:
        """:meth:`stream`'s answer, for callers that show nothing until it is done (eval,
        the UI's /ask API): the LLM's partial replies are then not checked as they come,
        since nobody would see them."""
        return drain(self._events(question, k, filters, conversation, use_llm, tokens=False),
                     lambda event: None)

    def _events(self, question: str, k, filters, conversation, use_llm, *,
                tokens: bool) -> Generator[Event, None, Answer]:
        """The question's events (no Done); the finished Answer is the return value."""
        t0 = time.perf_counter()
        question, note = clean_question_with_note(question)
        use_llm = self.settings.use_llm if use_llm is None else use_llm
        llm = self.llm if use_llm else None
        if use_llm and llm is None:
            note = _joined(note, "No LLM is configured (set OPENAI_API_KEY or OPENAI_BASE_URL); "
                                 "this is the offline answer.")
        if note:
            yield Note(note)
        timings: dict = {}
        searcher = self.searcher()  # the whole question reads this one generation
        turn = yield from self._standalone(searcher, question, conversation, llm, k, filters,
                                           timings)
        t1 = time.perf_counter()
        hits = turn.hits if turn.hits is not None else searcher.search(
            turn.standalone, k, filters, timings)
        t2 = time.perf_counter()
        result, llm_note = yield from self._compose(searcher, question, turn, hits, llm, tokens)
        t3 = time.perf_counter()
        timings.update(condense=(t1 - t0) * 1000, retrieve=(t2 - t1) * 1000,
                       answer=(t3 - t2) * 1000, total=(t3 - t0) * 1000)
        standalone = turn.standalone
        result = replace(result, question=question,
                         note=_joined(note, llm_note, result.note),
                         standalone_question=standalone if standalone != question else "",
                         timings_ms={k_: round(v, 2) for k_, v in timings.items()})
        if conversation is not None:
            conversation.add(question, result)
        return result

    def _standalone(self, searcher: Searcher, question: str, conversation: Conversation | None,
                    llm, k, filters, timings: dict) -> Generator[Event, None, _Turn]:
        """What to search for this turn. A first turn (or one after an abstention) stands
        alone; a later one is rewritten by the LLM when there is one, else (or when the
        rewrite fails) searched alone and with the previous subject (:meth:`_followup_offline`).
        The LLM's budget starts at the rewrite and is shared with the answer."""
        about = subject(conversation)
        if about is None:
            return _Turn(question)
        standalone, deadline = question, None
        if llm is not None:
            deadline = time.monotonic() + self.settings.llm_budget
            standalone = yield from self._condense_llm(question, conversation, llm, deadline)
        if standalone != question:  # the model's rewrite is new text: cleaned once, here
            return _Turn(clean_question(standalone), deadline=deadline)
        standalone, hits, followup = self._followup_offline(searcher, question, about, k,
                                                            filters, timings)
        return _Turn(standalone, hits, followup, deadline)

    def _compose(self, searcher: Searcher, question: str, turn: _Turn, hits: list[Hit], llm,
                 tokens: bool) -> Generator[Event, None, tuple[Answer, str]]:
        """(answer, note): the LLM's answer when one is used and answers; else the offline
        one (one Token), noting why the LLM did not answer. A rejected key or model is an
        error. ``tokens`` False: the LLM's partial replies are not checked for Tokens."""
        note = ""
        if llm is not None:
            from rag.errors import LLMConfigError, LLMError
            from rag.llm import stream_answer

            try:
                with closing(stream_answer(turn.standalone, hits, self.settings, llm,
                                           deadline=turn.deadline, tokens=tokens)) as events:
                    for event in events:
                        if isinstance(event, Done):
                            return event.answer, ""
                        yield event
            except LLMConfigError:
                raise
            except LLMError as exc:
                note = f"The LLM could not answer ({exc}); this is the offline answer."
                yield Note(note)
        result = self._answer_offline(searcher, question, turn.standalone, hits, turn.followup)
        yield Token(result.text)
        return result, note

    def _followup_offline(self, searcher: Searcher, question: str, about: Subject, k, filters,
                          timings):
        """(query, hits, is a follow-up): the turn searched alone and with the previous
        subject; the subject is kept only when the evidence says the turn leans on it
        (:class:`rag.chat.FollowupRule`)."""
        feats, alone, joined, joined_question = followup_evidence(
            searcher, question, about, k, filters, timings)
        if load_followup_rule(self.settings.embedder).is_followup(feats):
            return joined_question, joined, True
        return question, alone, False

    @property
    def calibration_path(self) -> Path:
        """The fitted models of this embedder: ``rag/calibration/<embedder>.json``."""
        from rag.retrieve.relevance import CALIBRATION_DIR

        return CALIBRATION_DIR / f"{self.settings.embedder}.json"

    def _answer_offline(self, searcher: Searcher, question: str, standalone: str,
                        hits: list[Hit], followup: bool) -> Answer:
        """The extractive answer, told which question words no indexed paper contains and
        how rare each word is in the index (sentences are matched on the rare ones)."""
        return answer_offline(standalone, hits, self.settings.abstain_threshold, focus=question,
                              absent=searcher.absent(question, hits),
                              weights=searcher.term_weights(question), followup=followup)

    def _condense_llm(self, question, conversation, llm,
                      deadline) -> Generator[Waiting | Token, None, str]:
        """The LLM's rewrite of the follow-up (its ``Waiting`` passed on), or the question
        itself when the rewrite fails: the offline rule takes over."""
        from rag.errors import LLMConfigError, LLMError
        from rag.llm import stream_condense

        try:
            return (yield from stream_condense(question, conversation, self.settings, llm,
                                               deadline=deadline))
        except LLMConfigError:
            raise
        except LLMError:  # the offline rewrite below takes over
            return question

    # --- description ------------------------------------------------------------------
    def stats(self) -> dict:
        """The index described: counts from the facets its cache keeps per generation
        (no paper record is read), the model, the answerer, where it lives."""
        store = self.store
        facets = snapshot(store).facets
        return {
            # Every paper record is counted once under its stored sources value.
            "papers": sum(facets.sources.values()),
            "chunks": store.count_chunks(),
            "sources": facets.source_counts(),
            "categories": facets.category_counts(),
            "dates": facets.all_dates(),
            "embedding_model": store.embed_model or f"(none yet; will use {self.embedder_name()})",
            "answerer": self.answerer_name,
            "location": store.location,
            "mode": "chroma server" if self.settings.chroma_url else "embedded",
            "bundled_corpus": str(BUNDLED_CORPUS),
        }

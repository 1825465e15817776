"""The LLM answerer: the retrieved papers and the question in, a checked Answer out, streamed.

:func:`stream_answer` is the primary form (an iterator of events); :func:`answer_llm`
is the same stream with callbacks. The reply goes through
:func:`rag.answer.check_citations` before anyone sees it, while streaming too: tokens
arrive already renumbered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

from rag.answer import abstain_text
from rag.errors import LLMError
from rag.llm.events import Done, Event, Token, Waiting, drain
from rag.llm.prompt import MAX_SOURCES, NOT_IN_SOURCES, build_messages
from rag.llm.reply import Decision, read_reply, shown_so_far
from rag.llm.transport import OnRequest, Reply, chat_events
from rag.openai_server import where
from rag.settings import Settings
from rag.types import Answer, Hit

OnToken = Callable[[str], None]


def stream_answer(question: str, hits: list[Hit], settings: Settings, llm, *,
                  deadline: float | None = None, tokens: bool = True,
                  ) -> Generator[Event, None, None]:
    """Answer from the retrieved papers with the LLM, as events: ``Waiting`` when the
    request goes out, ``Token``s of checked text in order, then ``Done(answer)``.
    ``tokens`` False: no Token (a caller that shows nothing until ``Done`` saves checking
    each partial reply; the answer is the same).

    Raises :class:`LLMConfigError` for a rejected key or unknown model and
    :class:`LLMError` when the server cannot produce an answer (the pipeline then
    answers offline). Stopping the iteration early closes the HTTP stream.
    """
    answer = yield from _answer_events(question, hits, settings, llm, deadline, tokens=tokens)
    yield Done(answer)


def answer_llm(question: str, hits: list[Hit], settings: Settings, llm,
               on_token: OnToken | None = None, *, deadline: float | None = None,
               on_request: OnRequest | None = None) -> Answer:
    """:func:`stream_answer` with callbacks: ``on_request`` as the request goes out,
    ``on_token`` with each piece of checked text; returns the Answer."""
    def handle(event: Waiting | Token) -> None:
        if isinstance(event, Token) and on_token is not None:
            on_token(event.text)
        elif isinstance(event, Waiting) and on_request is not None:
            on_request()

    # Without on_token, partial replies are not checked: nobody would see the result.
    return drain(_answer_events(question, hits, settings, llm, deadline,
                                tokens=on_token is not None), handle)


def _answer_events(question: str, hits: list[Hit], settings: Settings, llm,
                   deadline: float | None, *, tokens: bool,
                   ) -> Generator[Waiting | Token, None, Answer]:
    """The answer's events, the Answer as the return value; ``tokens`` False: no Token."""
    name = f"llm:{settings.llm_model}"
    if not hits:  # nothing to cite: no model call can help
        text = abstain_text(hits)
        if tokens:
            yield Token(text)
        return Answer(question=question, text=text, abstained=True, citations=(), hits=(),
                      answerer=name)
    deadline = deadline if deadline is not None else time.monotonic() + settings.llm_budget
    sources = hits[:MAX_SOURCES]  # only what the model saw can be cited
    events = chat_events(llm, settings, build_messages(question, sources, settings),
                         max_tokens=settings.llm_max_tokens, deadline=deadline, tokens=tokens)
    reply, shown = yield from _checked_tokens(events, sources)
    if not reply.text.strip():
        raise LLMError(f"empty reply from {where(settings)}")
    decision = read_reply(reply.text, sources)
    if not decision.text:  # e.g. only a reasoning scratchpad, cut by max_tokens
        raise LLMError(f"no answer text from {where(settings)} (raise ABSTRACTA_LLM_MAX_TOKENS?)")
    if tokens and decision.text.startswith(shown) and decision.text != shown:
        yield Token(decision.text[len(shown):])
    checked = decision.checked
    supported = decision.abstained or checked.supported
    return Answer(question=question, text=decision.text, abstained=decision.abstained,
                  citations=checked.citations, hits=tuple(hits), answerer=name,
                  supported=supported, note=_note(decision, supported, reply, settings),
                  removed_citations=checked.removed, unsupported_sentences=decision.flagged,
                  usage=reply.usage, raw_reply=reply.text)


def _checked_tokens(events: Generator[Waiting | Token, None, Reply], sources: list[Hit],
                    ) -> Generator[Waiting | Token, None, tuple[Reply, str]]:
    """The request's events with its raw text replaced by the checked text each delta adds
    to what is shown (nothing while the reply may be an abstention); returns the reply
    and what was shown of it."""
    raw, shown = "", ""
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                return stop.value, shown
            if isinstance(event, Waiting):
                yield event
                continue
            raw += event.text
            text = shown_so_far(raw, sources)
            # Only ever append: if the check rewrote what was shown, the CLI prints the final
            # text.
            if text and text.startswith(shown) and len(text) > len(shown):
                yield Token(text[len(shown):])
                shown = text
    finally:  # a consumer that stops early closes the HTTP stream now
        events.close()


def _note(decision: Decision, supported: bool, reply: Reply, settings: Settings) -> str:
    notes = []
    if reply.finish == "length":
        notes.append(f"The answer was cut off at {settings.llm_max_tokens} tokens "
                     "(ABSTRACTA_LLM_MAX_TOKENS).")
    if decision.hedged:
        notes.append(f"The model said the sources may not answer this ({NOT_IN_SOURCES}) but "
                     "still wrote cited claims; check them against the sources.")
    if not supported and not decision.checked.has_content:
        notes.append("The LLM's reply was only citation marks, with no statement; "
                     "read the sources instead.")
    elif not supported:
        notes.append("The LLM's answer cites none of the retrieved papers; "
                     "check it against the sources.")
    elif decision.abstained and decision.flagged:
        notes.append(f"The model also wrote {len(decision.flagged)} claim(s) citing no "
                     "source; they are not shown.")
    elif decision.flagged:
        notes.append(f"{len(decision.flagged)} sentence(s) of the answer cite no source.")
    return " ".join(notes)

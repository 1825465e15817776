"""The question as the core takes it: cleaned once, at the pipeline's entry.

:func:`clean_question_with_note` collapses whitespace and control characters, asks a
question pasted many times over once, and cuts a pasted document to its head. Every
later stage (the :class:`rag.retrieve.Searcher`, the answerers) takes the cleaned text.
"""

from __future__ import annotations

from rag.errors import QuestionError

MAX_QUESTION_CHARS = 2000  # a longer question is a pasted document; its head suffices


class Question(str):
    """A question as :func:`clean_question_with_note` made it, with its ``note``: cleaning
    it again returns it as it is, so a face that checks a question early (``ask "?"``
    must refuse before indexing anything) and the core's entry clean it once."""

    note: str = ""


def clean_question_with_note(question: str) -> tuple[str, str]:
    """(cleaned question, note): whitespace and control characters collapsed; a question
    over MAX_QUESTION_CHARS is cut, and the note says so (else it is ""). Refuses a
    question with no words. A :class:`Question` comes back unchanged, with its note."""
    from rag.text import display_safe

    if isinstance(question, Question):
        return question, question.note

    # Escape sequences go whole ("\x1b[31m" must not leave a word "31m" behind).
    text = display_safe(question, newlines=False)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    if not any(ch.isalnum() for ch in text):
        raise QuestionError("The question is empty; ask something about the indexed papers.")
    text = _once(text)
    note = "" if len(text) <= MAX_QUESTION_CHARS else (
        f"The question was {len(text):,} characters long; only its first "
        f"{MAX_QUESTION_CHARS:,} were used.")
    clean = Question(text[:MAX_QUESTION_CHARS])
    clean.note = note
    return clean, note


def _once(text: str) -> str:
    """A question pasted many times over, once: a repeated question is the same question,
    but repeating it skews both the embedding and every word count.

    Worked example: "Q? Q? Q? Q" (the unit "Q? " three times, then a cut-off copy) -> "Q?".
    Only text that is entirely such repeats changes.
    """
    head = text[:40]
    period = text.find(head, 1)
    if period <= 0 or len(head) < 12:
        return text
    unit = text[:period]
    whole, rest = divmod(len(text), period)
    if whole >= 2 and text == unit * whole + unit[:rest]:
        return unit.strip()
    return text


def dense_text(question: str) -> str:
    """What the dense side embeds: the question, or for a question in Chinese, Japanese
    or Korean that names something in Latin letters ("GPipeを提案した論文はどれですか"),
    its Latin runs ("GPipe"). An English sentence embedder reads CJK characters as
    unknown tokens, which pull the vector away from the name (measured with MiniLM: the
    GPipe paper's cosine 0.10 for the whole question, under the relevance floor); the
    lexical side still searches every word."""
    import re

    from rag.text import has_cjk

    if not has_cjk(question):
        return question
    latin = " ".join(re.findall(r"[A-Za-z0-9][A-Za-z0-9 .,:;'()+/-]*[A-Za-z0-9]", question))
    return latin if any(ch.isalpha() for ch in latin) else question


def clean_question(question: str) -> str:
    """:func:`clean_question_with_note` without the note."""
    return clean_question_with_note(question)[0]

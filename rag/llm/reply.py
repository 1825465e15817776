"""Reading the model's reply: the NOT IN SOURCES marker, a reasoning scratchpad, citations.

A complete reply is decided (:func:`read_reply`): an answer, a hedged answer or an
abstention, its citations checked by :func:`rag.answer.check_citations`. A partial
reply is shown only as far as that decision cannot change it (:func:`shown_so_far`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer import Checked, abstain_text, check_citations
from rag.types import Hit

# The marker at the start in any case and dress ("**Not in sources:**"), and anywhere
# else in capitals (a small model repeated it 600 tokens long). Every copy is removed.
_MARKER_START = re.compile(r"^[\s*_\"'`#>]*NOT\s+IN\s+(?:THE\s+)?SOURCES\b[\s*_\"'`:.,;!-]*",
                           re.I)
_MARKER = re.compile(r"[*_\"'`]*\bNOT\s+IN\s+(?:THE\s+)?SOURCES\b[*_\"'`]*[:.,;!-]*\s*")
_MARKER_FORMS = ("NOT IN SOURCES", "NOT IN THE SOURCES")
THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.S)
_OPEN_CITE = re.compile(r"\[[\d,;\s]*$")
# A sentence that only says the sources do not answer (the "short reason" that may
# follow the marker): it names the sources and negates.
_ABOUT_SOURCES = re.compile(r"\b(sources?|papers?|abstracts?|provided|context|documents?|"
                            r"indexed|given)\b", re.I)
_NEGATION = re.compile(r"\b(not|no|none|neither|nor|cannot|can't|don't|doesn't|lack|"
                       r"without|unable|only)\b", re.I)


def _strip_think(raw: str) -> tuple[str, bool]:
    """(reply without a reasoning model's scratchpad, whether it is complete)."""
    if not raw.lstrip().startswith("<think>"):
        return raw, True
    match = THINK.match(raw)
    return (raw[match.end():], True) if match else ("", False)


def _is_reason(sentence: str) -> bool:
    return bool(_ABOUT_SOURCES.search(sentence) and _NEGATION.search(sentence))


@dataclass
class Decision:
    """The reply read as an answer or an abstention, checked."""

    text: str
    abstained: bool
    checked: Checked
    hedged: bool = False  # the marker came with cited claims: answered, with a note
    flagged: tuple[str, ...] = ()  # sentences that claim something and cite nothing


def read_reply(raw: str, hits: list[Hit]) -> Decision:
    """Decide what a complete reply is.

    - no marker: an answer; its citations checked, uncited claims flagged;
    - the marker alone, or with a short reason and no claim: an abstention, shown as
      Abstracta's own closest-papers text;
    - the marker and cited claims: an answer (marker dropped, ``hedged``), checked;
    - uncited claims after the marker: an abstention, the claims flagged, not shown.
    """
    body, _ = _strip_think(raw)
    marked = bool(_MARKER_START.match(body) or _MARKER.search(body))
    body = _MARKER.sub(" ", _MARKER_START.sub("", body)).strip() if marked else body
    checked = check_citations(body, hits)
    from rag.text import CITE, sentences

    said = [s for para in checked.text.split("\n") for s in sentences(para)]
    # A reply that only says the sources do not answer is an abstention without the marker.
    marked = marked or bool(said and not checked.citations and all(map(_is_reason, said)))
    if not marked:
        return Decision(checked.text, False, checked, flagged=checked.unsupported)
    claims = [s for s in said if not _is_reason(s)]
    if any(CITE.search(s) for s in claims) and checked.supported:
        return Decision(checked.text, False, checked, hedged=True, flagged=checked.unsupported)
    flagged = tuple(s for s in checked.unsupported if not _is_reason(s))
    empty = Checked(abstain_text(hits), (), checked.removed, flagged, checked.numbers)
    return Decision(empty.text, True, empty, flagged=flagged)


def shown_so_far(raw: str, hits: list[Hit]) -> str | None:
    """What may be shown of a partial reply, or None while it could still be (or is) an
    abstention: the decision waits for the end of the reply."""
    body, complete = _strip_think(raw)
    if not complete:
        return None
    head = body.lstrip(" \t\r\n*_\"'`#>").upper()
    if len(head) < 19 and any(f.startswith(head) or head.startswith(f) for f in _MARKER_FORMS):
        return None
    if _MARKER_START.match(body):
        return None
    marker = _MARKER.search(body)
    body = body[:marker.start()] if marker else _hold_partial_marker(body)
    match = _OPEN_CITE.search(body[-24:])  # a citation still being written
    if match:
        body = body[: len(body) - len(body[-24:]) + match.start()]
    return check_citations(body, hits).text


def _hold_partial_marker(text: str) -> str:
    """The text without a trailing start of the marker ("... [1]. NOT IN SOU")."""
    for i in range(max(0, len(text) - 20), len(text)):
        tail = re.sub(r"\s+", " ", text[i:])
        if text[i] == "N" and (i == 0 or not text[i - 1].isalnum()) and any(
                f.startswith(tail) for f in _MARKER_FORMS):
            return text[:i]
    return text

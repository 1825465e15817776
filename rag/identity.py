"""Paper identity: one id per paper, computed once and used everywhere.

The id is the arXiv id when a record has one (``2406.01234``, version dropped);
else the file's own id for the record, namespaced by the source format
(``csv:W2741809807``, ``jsonl:doc-17``: an id column is never ignored); otherwise
``t:`` + a hash of the normalized title. Normalizing makes spellings of one title
meet::

    "M$^3$ViT: Mixture-of-Experts..."  ->  "m3vit mixture of experts ..."
    "M^3ViT: Mixture-of-Experts..."    ->  "m3vit mixture of experts ..."

The eval harness matches gold titles to papers with the same function.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

_TEX_COMMAND = re.compile(
    r"\\(?:math(?:bf|rm|cal|bb|sf|it|tt|frak)|text(?:bf|it|sc|tt|rm|sf|normal)?|emph|"
    r"boldsymbol|operatorname|it|bf|rm|sc|tt)\b"
)
_TEX_MARKS = str.maketrans("", "", "$^_{}\\")
_PUNCT = re.compile(r"[^\w\s]|_")
_ASCII_PUNCT = str.maketrans({chr(c): " " for c in range(128) if _PUNCT.match(chr(c))})
_ARXIV_URL = re.compile(
    r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(.+?)(?:\.pdf)?/?$", re.I
)
_ARXIV_NEW = re.compile(r"^(?:arxiv:)?(\d{4}\.\d{4,5})(?:v\d+)?$", re.I)
_ARXIV_OLD = re.compile(r"^(?:arxiv:)?([a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$", re.I)


def normalize_title(title: str) -> str:
    """Lowercase, strip TeX markup and punctuation, fold accents and whitespace."""
    text = title
    if not text.isascii():  # most titles are; the per-character fold is the slow part
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    if "\\" in text:
        text = _TEX_COMMAND.sub(" ", text)
    text = text.translate(_TEX_MARKS)  # M$^3$ViT -> M3ViT, x_{i} -> xi
    text = text.casefold()
    # ASCII text (nearly every abstract) maps its punctuation in one table lookup: the
    # two regex passes it replaces were most of an ingest's merge time (abstracts are
    # normalized too, see abstract_key). The table is built from the regex, so the two
    # agree on every ASCII character.
    text = text.translate(_ASCII_PUNCT) if text.isascii() else _PUNCT.sub(" ", text)
    return " ".join(text.split())


def normalize_arxiv_id(raw: str | None) -> str | None:
    """``arXiv:2406.01234v2`` or its arxiv.org link -> ``2406.01234``; None when not an arXiv id."""
    if not raw:
        return None
    raw = str(raw).strip()
    url = _ARXIV_URL.match(raw)  # an arxiv.org/abs/... or /pdf/... link in an id column
    if url:
        raw = url.group(1)
    for pattern in (_ARXIV_NEW, _ARXIV_OLD):
        match = pattern.match(raw)
        if match:
            return match.group(1)
    return None


@lru_cache(maxsize=1 << 16)
def title_key(title: str) -> str:
    """A short stable key of the normalized title (used to find one paper under two ids).

    Remembered for the last 65,536 titles (~15 MB): an ingest asks for a paper's key up
    to six times (read, merge, dedupe, write, the in-flight check), a batch of 10,000
    papers apart at most, and each costs ~13 us."""
    return hashlib.sha1(normalize_title(title).encode()).hexdigest()[:16]


def record_id(fmt: str, raw) -> str | None:
    """A file's own id for a record that is not an arXiv id, namespaced by the source
    format: ``record_id("csv", " W27 ")`` -> ``"csv:W27"``. None for an empty id."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    text = " ".join(str(raw).split())
    return f"{fmt}:{text[:200]}" if text else None


def abstract_key(abstract: str) -> str:
    """A short key of the abstract, normalized like a title (whitespace, case, TeX,
    punctuation): two listings of one paper meet, two papers that share a title
    ("Summary", "Erratum") do not."""
    return hashlib.sha1(normalize_title(abstract).encode()).hexdigest()[:16]


def paper_id(title: str, arxiv_id: str | None = None, record: str | None = None) -> str:
    """The paper's id: its arXiv id, else its namespaced record id, else ``t:`` + the
    title key."""
    return normalize_arxiv_id(arxiv_id) or record or f"t:{title_key(title)}"

"""Abstracta's error tree.

Every failure a user can cause or fix is one of these, raised with a message that
names the file, record or setting and says what to do. Library errors are wrapped
where they cross into ``rag`` (``raise ... from exc``); only the CLI and the UI
turn them into text. "The indexed papers do not cover this" is an *answer*
(``Answer.abstained``), never an error.
"""

from __future__ import annotations


class AbstractaError(Exception):
    """Base class: a problem the user can act on. ``str(err)`` is a one-line message."""

    exit_code = 1


class SettingsError(AbstractaError):
    """A setting is missing, unknown or has a bad value."""

    exit_code = 2


class SourceError(AbstractaError):
    """A file cannot be read as papers (missing, empty, binary, unknown format, bad record)."""


class StoreError(AbstractaError):
    """The index cannot be opened, read or written (data directory, Chroma server)."""


class EmbeddingMismatchError(StoreError):
    """The index was built with another embedding model than the one configured."""


class EmbedderError(AbstractaError):
    """The embedding backend failed or is misconfigured."""


class LLMError(AbstractaError):
    """The LLM could not produce an answer (after retries)."""


class LLMConfigError(LLMError):
    """The LLM rejected our configuration: wrong key (401) or unknown model (404)."""

    exit_code = 2


class QuestionError(AbstractaError):
    """The question cannot be asked (empty, or only punctuation)."""

    exit_code = 2


class UnknownPaperError(AbstractaError):
    """No indexed paper has this id or exact title (``ask similar``, a paper lookup)."""

    exit_code = 2


class FeedError(AbstractaError):
    """A feed (``ask sync``) sent something unusable for one page: an error page, broken
    JSON or XML, a refusal. That page stays unsynced; nothing indexed is touched."""


class FeedUnreachableError(FeedError):
    """A feed's server cannot be reached (offline, refused, DNS, timeouts): the sync stops."""


class IndexBusyError(StoreError):
    """Another process holds the index's write lock (``ask ingest --no-wait``)."""


class IndexDamagedError(StoreError):
    """The index holds records Chroma cannot read back; ``ask doctor --repair`` fixes it."""


class Interrupted(AbstractaError):
    """Ctrl-C or SIGTERM stopped an ingest between two committed papers."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code

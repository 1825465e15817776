"""Which feeds a sync runs: from `ask sync`'s arguments, or from ``Settings.sync_sources``.

``ask sync`` runs every configured source (``"hf arxiv:cs.CL"``); ``ask sync hf --since
2025-08-01`` the daily listing from that day; ``ask sync arxiv cs.CL cs.LG`` those
categories' nightly RSS, and with ``--days 7`` a backfill of the last seven days through
OAI-PMH (one request chain per archive: cs.CL and cs.LG share ``set=cs``).
"""

from __future__ import annotations

import datetime as dt
import re

from rag.errors import SettingsError
from rag.feeds.arxiv_rss import ArxivRSS
from rag.feeds.hf import HFDaily
from rag.feeds.oai_pmh import ArxivOAI
from rag.feeds.source import Feed
from rag.settings import Settings

# An arXiv category: cs.CL, math.AG, hep-th, physics.optics, q-bio.NC, astro-ph.GA.
_CATEGORY = re.compile(r"^[a-z][a-z\-]{0,15}(?:\.[A-Za-z][A-Za-z\-]{0,15})?$")
SOURCES = ("hf", "arxiv")


def configured(settings: Settings) -> tuple[bool, list[str]]:
    """(the daily listing is configured, the arXiv categories configured)."""
    hf, categories = False, []
    for token in settings.sync_sources.replace(",", " ").split():
        if token == "hf":
            hf = True
        elif token.startswith("arxiv:") and _CATEGORY.match(token[6:]):
            categories.append(token[6:])
        else:
            raise SettingsError(
                f"ABSTRACTA_SYNC_SOURCES: '{token}' is not a source; use 'hf' and/or "
                "'arxiv:<category>' (e.g. 'hf arxiv:cs.CL').")
    return hf, categories


def plan(settings: Settings, source: str | None, categories: list[str], *,
         since: dt.date | None, until: dt.date | None, days: int | None,
         today: dt.date) -> list[Feed]:
    """The feeds to run. ValueError for arguments that do not make sense together."""
    if source is None:
        hf, categories = configured(settings)
    elif source == "hf":
        if categories:
            raise ValueError("`ask sync hf` takes no categories; they are arXiv's.")
        hf, categories = True, []
    else:
        hf = False
        categories = categories or configured(settings)[1]
        if not categories:
            raise ValueError("name arXiv categories (e.g. `ask sync arxiv cs.CL`) or set "
                             "ABSTRACTA_SYNC_SOURCES='arxiv:cs.CL'.")
    bad = [c for c in categories if not _CATEGORY.match(c)]
    if bad:
        raise ValueError(f"'{bad[0]}' is not an arXiv category (e.g. cs.CL, math.AG, hep-th).")
    if since and days:
        raise ValueError("give --since or --days, not both.")
    feeds: list[Feed] = []
    if hf:
        start = since or (today - dt.timedelta(days=days - 1) if days else None)
        feeds.append(HFDaily(settings, today, start, until))
    # --since for arXiv: a backfill from that day (OAI-PMH counts in days back from today).
    days = days or ((today - since).days + 1 if since and categories else None)
    if days:
        for archive in sorted({c.split(".")[0] for c in categories}):
            group = sorted({c for c in categories if c.split(".")[0] == archive})
            feeds.append(ArxivOAI(settings, group, days, today))
    else:
        feeds.extend(ArxivRSS(settings, c) for c in dict.fromkeys(categories))
    if not feeds:
        raise ValueError("nothing to sync: ABSTRACTA_SYNC_SOURCES names no source; set it "
                         "(e.g. 'hf arxiv:cs.CL') or name one (`ask sync hf`).")
    return feeds

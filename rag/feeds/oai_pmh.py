"""arXiv's OAI-PMH interface, for a backfill: ``ListRecords`` in the arXiv metadata format.

``GET <arxiv_oai_url>?verb=ListRecords&metadataPrefix=arXiv&set=cs&from=2025-08-01&until=
2025-08-07`` answers a page of records and, while more remain, a ``resumptionToken``;
the next page is ``?verb=ListRecords&resumptionToken=<token>`` (nothing else)::

    <OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords>
      <record><header><identifier>oai:arXiv.org:2508.01234</identifier>
          <datestamp>2025-08-04</datestamp><setSpec>cs</setSpec></header>
        <metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>2508.01234</id>
          <authors><author><keyname>Lovelace</keyname><forenames>Ada</forenames></author>
          </authors><title>...</title><categories>cs.CL cs.LG</categories>
          <abstract>...</abstract></arXiv></metadata></record> ...
      <resumptionToken cursor="0" completeListSize="2301">6960524|1001</resumptionToken>
    </ListRecords></OAI-PMH>

No match is ``<error code="noRecordsMatch">``: an empty range, not a failure. Sets are
archives (``cs``), so records are kept only when one of their categories was asked
for; a record ``created`` before the range is a new version of an older paper (its
datestamp moved) and is left out, as the RSS feed's replacements are. Each asked
category a record is in gives it a listing ``("2025-08-04", "arxiv cs.CL 2025-08-04")``
(the datestamp). The cursor holds, per category, the last
day fully synced (``through``); it moves only once the last page of the chain is
committed, so a chain cut anywhere is fetched again from its start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from xml.etree.ElementTree import Element

from rag.errors import FeedError
from rag.feeds.client import Client
from rag.feeds.source import Failure, Page, listing_name
from rag.feeds.xml import parse_xml, text_of
from rag.identity import normalize_arxiv_id
from rag.types import Listing, Paper

NS = {"o": "http://www.openarchives.org/OAI/2.0/", "a": "http://arxiv.org/OAI/arXiv/"}


class ArxivOAI:
    """A backfill of some categories of one archive (``set``), ``days`` back from today."""

    def __init__(self, settings, categories: list[str], days: int, today: dt.date) -> None:
        self.settings, self.categories = settings, sorted(categories)
        self.set = categories[0].split(".")[0]
        self.name = f"arxiv {' '.join(self.categories)}"
        self.cursor_key = f"arxiv-oai-{self.set}"
        self.until = today - dt.timedelta(days=1)  # today's records are not all in yet
        self.start = today - dt.timedelta(days=days)

    def span(self, cursor: dict) -> tuple[dt.date, dt.date] | None:
        """(from, until) still to fetch; None when every category is synced through until."""
        through = cursor.get("through", {})
        starts = [max(self.start, dt.date.fromisoformat(through[c]) + dt.timedelta(days=1))
                  if c in through else self.start for c in self.categories]
        start = min(starts)
        return None if start > self.until else (start, self.until)

    def pages(self, cursor: dict, client: Client) -> Iterator[Page | Failure]:
        span = self.span(cursor)
        if span is None:
            return
        params: dict = {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": self.set,
                        "from": span[0].isoformat(), "until": span[1].isoformat()}
        for n in range(1, 100_000):
            reply = client.get(self.settings.arxiv_oai_url, params,
                               spacing=self.settings.arxiv_delay)
            try:
                page, token = parse_page(reply.body, self.categories, f"{self.name} page {n}",
                                         span[0].isoformat())
            except FeedError as exc:
                yield Failure(self.name, f"{self.name} (page {n} from {span[0]}): {exc}")
                return
            page.raw = reply.body
            page.raw_name = f"arxiv-oai/{self.set}/{span[0]}_{span[1]}_{n:04d}.xml"
            if not token:  # the chain is complete: every asked category is synced through
                through = dict(cursor.get("through", {}))
                through.update({c: span[1].isoformat() for c in self.categories})
                page.cursor = {"through": through}
            yield page
            if not token:
                return
            params = {"verb": "ListRecords", "resumptionToken": token}


def parse_page(body: bytes, categories: list[str], label: str,
               since: str = "") -> tuple[Page, str]:
    """One ListRecords answer: its records as a Page, and the resumption token ("" at
    the end). Papers created before ``since`` (new versions of old papers) are left out."""
    root = parse_xml(body, "OAI-PMH answer")
    if root.tag != f"{{{NS['o']}}}OAI-PMH":
        raise FeedError("the answer is not OAI-PMH; check ABSTRACTA_ARXIV_OAI_URL.")
    error = root.find("o:error", NS)
    if error is not None:
        if error.get("code") == "noRecordsMatch":
            return Page(label, label), ""
        raise FeedError(f"the server refused the request ({error.get('code') or 'error'}); "
                        "run `ask sync` again later.")
    listing = root.find("o:ListRecords", NS)
    if listing is None:
        raise FeedError("the answer holds no ListRecords; check ABSTRACTA_ARXIV_OAI_URL.")
    page = Page(label, label)
    for n, record in enumerate(listing.findall("o:record", NS), start=1):
        paper = _paper(record, categories, since)
        if paper is None:
            continue
        page.records += 1
        if isinstance(paper, str):
            page.skipped.append(f"{label}: record {n}: {paper}; skipped")
        else:
            page.papers.append(paper)
    return page, text_of(listing, "o:resumptionToken", NS)


def _paper(record: Element, wanted: list[str], since: str) -> Paper | str | None:
    """One record as a Paper; None when it is not for us (deleted, other categories, an
    older paper's new version); else why it cannot be one."""
    header = record.find("o:header", NS)
    if header is None or header.get("status") == "deleted":
        return None
    meta = record.find("o:metadata/a:arXiv", NS)
    categories = text_of(meta, "a:categories", NS)
    mine = [c for c in wanted if c in categories.split()]
    created = text_of(meta, "a:created", NS)[:10]
    if meta is None or not mine or (created and created < since):
        return None
    day = text_of(header, "o:datestamp", NS)[:10]
    arxiv_id = normalize_arxiv_id(text_of(meta, "a:id", NS))
    title, abstract = text_of(meta, "a:title", NS), text_of(meta, "a:abstract", NS)
    if not title or not abstract:
        return f"{arxiv_id or 'a paper'} has no {'title' if not title else 'abstract'}"
    authors = [" ".join(filter(None, (text_of(a, "a:forenames", NS), text_of(a, "a:keyname", NS),
                                      text_of(a, "a:suffix", NS))))
               for a in meta.findall("a:authors/a:author", NS)]
    listings = tuple(Listing(day, listing_name(f"arxiv {c}", day)) for c in mine)
    return Paper(title=title, abstract=abstract, listings=listings, arxiv_id=arxiv_id,
                 authors=", ".join(a for a in authors if a), categories=categories,
                 where=f"{listings[0].source} {arxiv_id or ''}".strip())

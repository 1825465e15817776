"""arXiv's nightly RSS feed of one category: the papers announced last night.

``GET <arxiv_rss_url>/cs.CL`` answers RSS 2.0 with arXiv's namespace::

    <rss version="2.0" xmlns:arxiv="http://arxiv.org/schemas/atom"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
      <channel><title>cs.CL updates on arXiv.org</title>
        <pubDate>Fri, 01 Aug 2025 00:00:00 -0400</pubDate>
        <item><title>...</title><link>https://arxiv.org/abs/2508.01234</link>
          <description>arXiv:2508.01234v1 Announce Type: new
    Abstract: ...</description>
          <guid isPermaLink="false">oai:arXiv.org:2508.01234v1</guid>
          <category>cs.CL</category><category>cs.AI</category>
          <arxiv:announce_type>new</arxiv:announce_type>
          <dc:creator>Ada Lovelace, Alan Turing</dc:creator></item> ...

New submissions (``new``) and cross-lists (``cross``, new to this category) are
taken; ``replace`` entries are new versions of older papers, which a version-free id
already holds. A day without announcements (weekends) has no items. The listing is
``("2025-08-01", "arxiv cs.CL 2025-08-01")``, the channel's date. The cursor keeps
that date and the feed's ETag / Last-Modified: the next sync asks "changed since?"
and takes nothing when the date is the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from xml.etree.ElementTree import Element

from rag.errors import FeedError
from rag.feeds.client import Client
from rag.feeds.source import Failure, Page, listing_name
from rag.feeds.xml import parse_xml, text_of
from rag.identity import normalize_arxiv_id
from rag.types import Listing, Paper

NS = {"arxiv": "http://arxiv.org/schemas/atom", "dc": "http://purl.org/dc/elements/1.1/"}
TAKEN = {"new", "cross"}


class ArxivRSS:
    """One category's nightly feed: one page (or none, when nothing changed)."""

    def __init__(self, settings, category: str) -> None:
        self.settings, self.category = settings, category
        self.name = f"arxiv {category}"
        self.cursor_key = f"arxiv-{category}-rss"

    def pages(self, cursor: dict, client: Client) -> Iterator[Page | Failure]:
        url = f"{self.settings.arxiv_rss_url.rstrip('/')}/{self.category}"
        reply = client.get(url, spacing=self.settings.arxiv_delay,
                           validators=cursor.get("validators"))
        if reply.not_modified:
            yield Page(self.name, self.name, not_modified=True, cursor=None)
            return
        try:
            page = parse_feed(reply.body, self.name)
        except FeedError as exc:
            yield Failure(self.name, f"{self.name}: {exc}")
            return
        day = page.cursor["date"] if page.cursor else ""
        page.cursor = {"date": day, "validators": reply.validators()}
        if day and day == cursor.get("date"):  # served again without a 304
            yield Page(self.name, page.label, not_modified=True, cursor=page.cursor)
            return
        page.raw, page.raw_name = reply.body, f"arxiv-rss/{self.category}/{day or 'undated'}.xml"
        yield page


def parse_feed(body: bytes, feed: str) -> Page:
    """The feed as a Page; its ``cursor`` holds the announcement date."""
    root = parse_xml(body, "RSS feed")
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise FeedError(f"the answer is not an RSS feed (<{_local(root.tag)}>); check "
                        "ABSTRACTA_ARXIV_RSS_URL.")
    day = _day(text_of(channel, "pubDate", NS) or text_of(channel, "lastBuildDate", NS))
    label = listing_name(feed, day) if day else feed
    items = channel.findall("item")
    page = Page(feed, label, records=len(items), cursor={"date": day})
    for n, item in enumerate(items, start=1):
        paper = _paper(item, day, label)
        if isinstance(paper, str):
            if paper:
                page.skipped.append(f"{label}: item {n}: {paper}; skipped")
        else:
            page.papers.append(paper)
    page.records = len(page.papers) + len(page.skipped)  # replacements are not records here
    return page


def _paper(item: Element, day: str, label: str) -> Paper | str:
    """One item as a Paper; "" for an item left out on purpose (a replacement); else why
    it cannot be one."""
    kind = text_of(item, "arxiv:announce_type", NS) or "new"
    if kind not in TAKEN:
        return ""
    title = text_of(item, "title", NS)
    arxiv_id = (normalize_arxiv_id(text_of(item, "guid", NS).removeprefix("oai:arXiv.org:"))
                or normalize_arxiv_id(text_of(item, "link", NS)))
    _, marker, abstract = text_of(item, "description", NS).partition("Abstract:")
    abstract = abstract.strip() if marker else ""
    if not title or not abstract:
        return f"{arxiv_id or 'a paper'} has no {'title' if not title else 'abstract'}"
    categories = " ".join(c.text.strip() for c in item.findall("category") if c.text)
    return Paper(title=title, abstract=abstract, listings=(Listing(day, label),),
                 arxiv_id=arxiv_id, authors=text_of(item, "dc:creator", NS),
                 categories=categories, where=label + (f" {arxiv_id}" if arxiv_id else ""))


def _day(value: str) -> str:
    """'Fri, 01 Aug 2025 00:00:00 -0400' -> '2025-08-01' ("" when absent or unreadable)."""
    try:
        return parsedate_to_datetime(value).date().isoformat() if value else ""
    except (TypeError, ValueError):
        return ""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]

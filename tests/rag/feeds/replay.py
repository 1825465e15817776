"""A local HTTP server (stdlib http.server, 127.0.0.1, real HTTP) that replays feed
answers in each source's real format, and the faults real servers produce.

Routes are keyed by path and the query parameter that picks a page (``date`` for the
daily papers API, ``resumptionToken`` for OAI-PMH, none for RSS). Each key holds a list
of answers served in turn, the last one repeated: ``[busy(503), ok(body)]`` is "503
with Retry-After, then the page". An answer with an ETag answers 304 to a request that
sends it back. ``hold`` makes one key's request wait until released (a test kills the
client meanwhile). Every request is logged (path, query, headers).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def ok(body: bytes | str, content_type: str = "application/json", **headers) -> Answer:
    data = body.encode() if isinstance(body, str) else body
    return Answer(200, data, {"Content-Type": content_type, **headers})


def busy(status: int = 503, retry_after: str = "0") -> Answer:
    return Answer(status, b"busy", {"Retry-After": retry_after, "Content-Type": "text/plain"})


def html_error() -> Answer:
    return Answer(200, b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
                  {"Content-Type": "text/html"})


class Replay:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.log: list[dict] = []
        self.holds: dict[tuple[str, str], threading.Event] = {}
        self.held = threading.Event()  # set when a held request arrived
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                replay.serve(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Replay:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for event in self.holds.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()

    def route(self, path: str, key: str, *answers: Answer) -> None:
        self.routes[(path, key)] = list(answers)

    def hold(self, path: str, key: str) -> threading.Event:
        self.holds[(path, key)] = event = threading.Event()
        return event

    def requests(self, path: str) -> list[dict]:
        return [r for r in self.log if r["path"] == path]

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        key = query.get("date") or query.get("resumptionToken") or ""
        self.log.append({"path": url.path, "query": query, "headers": dict(handler.headers)})
        if (url.path, key) in self.holds:
            self.held.set()
            self.holds[(url.path, key)].wait(30)
        answers = self.routes.get((url.path, key)) or self.routes.get((url.path, "*"))
        if not answers:
            answer = Answer(404, b"not found", {"Content-Type": "text/plain"})
        else:
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        etag = answer.headers.get("ETag")
        if etag and handler.headers.get("If-None-Match") == etag:
            answer = Answer(304, b"", {"ETag": etag})
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)


# --- the sources' formats ---------------------------------------------------------------

def paper(n: int, topic: str = "sparse attention") -> dict:
    """A tiny synthetic paper: arXiv id 2508.0NNNN, a title and an abstract of its own."""
    return {"id": f"2508.{n:05d}", "title": f"Paper {n}: {topic} study number {n}",
            "abstract": (f"We study {topic} in setting {n}. Our method number {n} improves "
                         f"accuracy on benchmark {n} while using fewer resources than "
                         f"previous work; experiments on task {n} confirm it."),
            "authors": [f"Author {n}", "Grace Hopper"], "categories": ["cs.CL", "cs.LG"]}


def hf_day(papers: list[dict]) -> str:
    """The daily papers API's answer for one day (the fields it really has)."""
    return json.dumps([{
        "paper": {"id": p["id"], "authors": [{"_id": f"a{i}", "name": a, "hidden": False}
                                             for i, a in enumerate(p["authors"])],
                  "publishedAt": "2025-08-01T17:59:58.000Z", "title": p["title"],
                  "summary": p["abstract"], "upvotes": 7, "discussionId": "x"},
        "publishedAt": "2025-08-02T01:23:45.000Z", "title": p["title"],
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{p['id']}.png",
        "numComments": 1, "submittedBy": {"name": "someone"}, "isAuthorParticipating": False,
    } for p in papers])


def rss(category: str, day_rfc822: str, items: list[tuple[dict, str]]) -> str:
    """arXiv's nightly RSS 2.0 for a category (items: (paper, announce type))."""
    body = "".join(f"""
    <item>
      <title>{escape(p['title'])}</title>
      <link>https://arxiv.org/abs/{p['id']}</link>
      <description>arXiv:{p['id']}v1 Announce Type: {kind}
Abstract: {escape(p['abstract'])}</description>
      <guid isPermaLink="false">oai:arXiv.org:{p['id']}v1</guid>
      {''.join(f'<category>{c}</category>' for c in p['categories'])}
      <pubDate>{day_rfc822}</pubDate>
      <arxiv:announce_type>{kind}</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{escape(', '.join(p['authors']))}</dc:creator>
    </item>""" for p, kind in items)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 version="2.0">
  <channel>
    <title>{category} updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/{category}</link>
    <description>{category} updates on the arXiv.org e-print archive.</description>
    <atom:link href="https://rss.arxiv.org/rss/{category}" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>{day_rfc822}</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>{day_rfc822}</pubDate>
    <skipDays><day>Saturday</day><day>Sunday</day></skipDays>{body}
  </channel>
</rss>"""


def oai(records: list[tuple[dict, str]], token: str = "", complete: int = 0,
        cursor: int = 0) -> str:
    """One OAI-PMH ListRecords page in the arXiv metadata format (records: (paper, datestamp))."""
    recs = "".join(f"""
<record><header><identifier>oai:arXiv.org:{p['id']}</identifier><datestamp>{stamp}</datestamp>
<setSpec>cs</setSpec></header><metadata>
<arXiv xmlns="http://arxiv.org/OAI/arXiv/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">
<id>{p['id']}</id><created>{p.get('created', stamp)}</created><authors>{''.join(
    f'<author><keyname>{escape(a.split()[-1])}</keyname><forenames>{escape(a.split()[0])}</forenames></author>'
    for a in p['authors'])}</authors>
<title>{escape(p['title'])}</title><categories>{' '.join(p['categories'])}</categories>
<license>http://creativecommons.org/licenses/by/4.0/</license>
{f"<abstract>  {escape(p['abstract'])}</abstract>" if p['abstract'] else ''}
</arXiv></metadata></record>"""
        for p, stamp in records)
    tok = (f'<resumptionToken cursor="{cursor}" completeListSize="{complete}">{token}'
           '</resumptionToken>') if token else (
        f'<resumptionToken cursor="{cursor}" completeListSize="{complete}"/>' if cursor else "")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">
<responseDate>2025-08-08T10:00:00Z</responseDate>
<request verb="ListRecords" metadataPrefix="arXiv" set="cs">https://oaipmh.arxiv.org/oai</request>
<ListRecords>{recs}
{tok}
</ListRecords>
</OAI-PMH>"""


def oai_no_records() -> str:
    return """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2025-08-08T10:00:00Z</responseDate>
<request verb="ListRecords">https://oaipmh.arxiv.org/oai</request>
<error code="noRecordsMatch">No records match</error></OAI-PMH>"""

"""XML from feeds, parsed by the standard library behind defusedxml (no entity
expansion, no external entities, no DTD tricks): a feed is untrusted input."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from rag.errors import FeedError


def parse_xml(body: bytes, what: str) -> Element:
    """The document's root element; FeedError for broken, truncated or hostile XML."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(body)
    except ParseError as exc:
        line, column = exc.position
        raise FeedError(f"the {what} is not well-formed XML (line {line}, column {column}; "
                        "truncated?); this page stays unsynced, run `ask sync` again "
                        "later.") from exc
    except DefusedXmlException as exc:
        raise FeedError(f"the {what} uses XML features a feed never needs "
                        f"({type(exc).__name__}); refused.") from exc


def text_of(element: Element | None, path: str, ns: dict[str, str]) -> str:
    """The text of the first ``path`` under ``element``, whitespace folded ("" if none)."""
    if element is None:
        return ""
    found = element.find(path, ns)
    if found is None:
        return ""
    return " ".join("".join(found.itertext()).split())

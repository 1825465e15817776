"""Category and author filters through the programmatic faces: the REST API over real
HTTP and `ask mcp` over stdio, on a tiny arXiv index whose papers carry both."""

from __future__ import annotations

import httpx
import pytest
from helpers import filters_index, free_port
from test_mcp import _json, _session

QUESTION = "Which paper studies dialogue state tracking?"


@pytest.fixture(scope="module")
def filters_dir(tmp_path_factory, embedder):
    data = tmp_path_factory.mktemp("filters") / "data"
    filters_index(data, embedder)
    return data


@pytest.fixture(scope="module")
def api(filters_dir, embedder):
    from test_rest import wait_ready

    from rag.pipeline import Pipeline
    from rag.settings import Settings
    from ui.app import serve

    settings = Settings(data_dir=filters_dir, _env_file=None)
    demo, url = serve(settings, "127.0.0.1", free_port(), block=False, quiet=True,
                      pipeline=Pipeline(settings, embedder=embedder))
    url = url.rstrip("/")
    assert wait_ready(url)["papers"] == 8
    yield f"{url}/api/v1"
    demo.close()


def _ids(hits) -> set[str]:
    return {h["paper_id"] for h in hits}


def test_rest_search_filters_by_repeated_category_and_author(api):
    res = httpx.get(f"{api}/search", params=[("q", "language models"), ("k", 10),
                                             ("category", "cs.CL"), ("category", "cs.CV"),
                                             ("author", "Li"), ("author", "Hinton")],
                    timeout=60)
    assert res.status_code == 200, res.text
    # cs.CL or cs.CV, and by a Li or a Hinton: Wei Li's, Li Na's, Capsules, Graves et al.
    assert _ids(res.json()) == {"2401.00003", "2401.00008", "2401.00002", "2401.00007"}


def test_rest_ask_filters_and_an_unmatched_filter_is_a_400_saying_so(api):
    res = httpx.post(f"{api}/ask", json={"question": QUESTION, "k": 5, "category": "cs",
                                         "author": ["Xiao Chen"], "since": "2024-01-05"},
                     timeout=120)
    assert res.status_code == 200, res.text
    out = res.json()
    assert _ids(out["sources"]) == {"2401.00004"} and not out["abstained"]
    for body, says in [({"category": "cs.XX"}, "No indexed paper has category 'cs.XX'"),
                       ({"author": "Lin Li"}, "No indexed paper has an author named 'Lin Li'"),
                       ({"category": "hep-th", "author": "Xiao Chen"}, "filters together")]:
        res = httpx.post(f"{api}/ask", json={"question": QUESTION, **body}, timeout=60)
        assert res.status_code == 400 and says in res.json()["error"], res.text
    res = httpx.post(f"{api}/ask", json={"question": QUESTION, "author": ["x"] * 21},
                     timeout=60)
    assert res.status_code == 400 and "at most 20" in res.json()["error"]


def test_mcp_tools_filter_by_category_and_author(filters_dir):
    async def calls(session):
        return [await session.call_tool(name, args) for name, args in [
            ("search_papers", {"query": "neural networks", "k": 10, "author": "G. Hinton"}),
            ("ask", {"question": QUESTION, "category": ["cs.CL"], "author": "lin wu"}),
            ("search_papers", {"query": "networks", "category": "cs.XX"}),
            ("ask", {"question": QUESTION, "author": "Nobody"}),
        ]]

    found, answer, bad_category, bad_author = _session(filters_dir, calls)
    assert _ids(_json(found)["result"]) == {"2401.00001", "2401.00002"}
    assert _ids(_json(answer)["sources"]) == {"2401.00004"}
    for result, says in [(bad_category, "No indexed paper has category 'cs.XX'"),
                         (bad_author, "No indexed paper has an author named 'Nobody'")]:
        assert result.isError and says in result.content[0].text

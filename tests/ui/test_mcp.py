"""`ask mcp` driven as an MCP client drives it: the real command in a subprocess, the
official SDK's stdio client, the real index."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

GQSA_Q = "Which paper combines group quantization with structured sparsity?"
TOOLS = {"search_papers", "ask", "get_paper", "similar_papers"}


def _session(data_dir: Path, calls, **env):
    """Start `ask mcp` on ``data_dir``, run ``await calls(session)``, return its result."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "rag.cli", "mcp"],
        env=dict(os.environ, ABSTRACTA_DATA_DIR=str(data_dir), **env))

    async def run():
        with open(data_dir.parent / "mcp-stderr.log", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                return await asyncio.wait_for(calls(session), 300)

    return asyncio.run(run())


def _json(result):
    assert not result.isError, result.content
    return result.structuredContent


def test_mcp_lists_its_tools_and_answers_with_cited_sources(bundled_copy):
    _, data = bundled_copy

    async def calls(session):
        listed = (await session.list_tools()).tools
        found = await session.call_tool("search_papers", {"query": "group quantization "
                                                          "sparsity", "k": 3})
        answer = await session.call_tool("ask", {"question": GQSA_Q, "k": 4})
        return listed, found, answer

    listed, found, answer = _session(data, calls)
    tools = {t.name: t for t in listed}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
    ask_schema = tools["ask"].inputSchema
    assert ask_schema["required"] == ["question"]
    assert ask_schema["properties"]["k"]["maximum"] == 100
    assert "description" in ask_schema["properties"]["since"]
    hits = _json(found)["result"]
    assert len(hits) == 3 and hits[0]["title"].startswith("GQSA")
    assert [h["rank"] for h in hits] == [1, 2, 3]
    out = _json(answer)
    assert out["schema_version"] == 1 and out["question"] == GQSA_Q
    assert out["abstained"] is False and len(out["sources"]) == 4
    assert out["citations"] and "[1]" in out["answer"]
    assert {c["paper_id"] for c in out["citations"]} <= {s["paper_id"] for s in out["sources"]}
    # The text content is the same object, as JSON (for clients that read only text).
    assert json.loads(answer.content[0].text) == out


def test_mcp_paper_tools_and_bad_arguments_are_tool_errors(bundled_copy):
    _, data = bundled_copy

    async def calls(session):
        found = _json(await session.call_tool("search_papers", {"query": "GQSA"}))["result"]
        pid = found[0]["paper_id"]
        return pid, [await session.call_tool(name, args) for name, args in [
            ("get_paper", {"paper_id": pid}),
            ("similar_papers", {"paper_id": pid, "k": 3}),
            ("ask", {"question": GQSA_Q, "k": 0}),
            ("get_paper", {"paper_id": "t:0000000000000000"}),
            ("search_papers", {"query": "?!"}),
            ("similar_papers", {"paper_id": pid, "since": "not a date"}),
            ("search_papers", {"query": "sparsity", "k": 1}),  # still serving after errors
        ]]

    pid, (paper, similar, bad_k, unknown, empty, bad_date, after) = _session(data, calls)
    record = _json(paper)
    assert record["paper_id"] == pid and record["title"].startswith("GQSA")
    assert record["abstract"].startswith("Model compression")
    neighbours = _json(similar)["result"]
    assert len(neighbours) == 3 and pid not in {n["paper_id"] for n in neighbours}
    for result, words in [(bad_k, "k must be a whole number from 1 to 100"),
                          (unknown, "No indexed paper has the id or exact title"),
                          (empty, "question"), (bad_date, "not a date")]:
        assert result.isError, result
        message = result.content[0].text
        assert words in message and "\n" not in message and "Traceback" not in message
    assert len(_json(after)["result"]) == 1


def test_mcp_first_run_indexes_quietly_and_keeps_stdout_for_the_protocol(tmp_path):
    """An empty data dir: the server answers at once, indexes the bundled corpus in the
    background (messages on stderr only), and a tool call waits for it."""
    data = tmp_path / "fresh"

    async def calls(session):
        listed = await session.list_tools()  # before the corpus is indexed
        return listed, await session.call_tool("search_papers", {"query": "GPipe pipeline "
                                                                 "parallelism", "k": 2})

    listed, found = _session(data, calls, ABSTRACTA_EMBEDDER="wordllama")
    assert {t.name for t in listed.tools} == TOOLS
    hits = _json(found)["result"]
    assert len(hits) == 2 and "GPipe" in hits[0]["title"]
    stderr = (tmp_path / "mcp-stderr.log").read_text()
    assert "ingesting the bundled sample corpus" in stderr


def test_paper_text_reaches_an_agent_inert():
    """A hostile abstract's escape sequences and bidi overrides never reach the client."""
    from ui.mcp_server import inert

    hostile = {"title": "\u202efdp.exe", "abstract": "line 1\n\x1b]8;;http://x\x07link\x1b[2J",
               "sources": ["a\x85b"], "score": 0.5}
    assert inert(hostile) == {"title": "fdp.exe", "abstract": "line 1\nlink",
                              "sources": ["ab"], "score": 0.5}

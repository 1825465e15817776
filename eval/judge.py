"""An LLM judge: is each claim of an answer supported by the abstracts it cites?

Used only with ``ask eval --judge`` and an LLM configured. The judge is asked for
JSON; a reply that is not the expected JSON is recorded as ``unparsable`` and
counted in the summary, never scored as zero.
"""

from __future__ import annotations

import json
import re

PROMPT = """You check answers written from research-paper abstracts.

Question: {question}

Answer (citations are [n]):
{answer}

Sources:
{sources}

Split the answer into its factual claims. For each claim decide:
- "supported": true when the sources above (any of them) state or directly imply it;
- "cited": the [n] numbers the answer attaches to the claim (empty list if none);
- "citation_supports": true when one of the cited sources itself supports it.

Reply with JSON only, no prose:
{{"claims": [{{"claim": "...", "supported": true, "cited": [1], "citation_supports": true}}]}}"""


JUDGE_MAX_TOKENS = 1000  # a claims list for a few-sentence answer; a bound, never reached


class Judge:
    """Scores answers with one chat model, through Abstracta's own client and stream.

    The judge shares the answerer's client factory, streaming, timeouts and error
    messages (:func:`rag.ask_model`): a slow local model is waited for within ``llm_budget``,
    and an error is recorded as the same one-line, secret-free message the answerer
    gives, never the server's text (which can echo the key).
    """

    def __init__(self, settings):
        from rag import openai_client

        self.settings = settings
        self.model = settings.llm_model
        self.client = openai_client(settings)

    def judge(self, question: str, answer) -> dict:
        """{"faithfulness", "citation_support", "claims"} or {"status": why it has no score}."""
        if answer.abstained or not answer.text.strip():
            return {"status": "skipped"}
        from rag import LLMConfigError, LLMError, ask_model

        prompt = PROMPT.format(question=question, answer=answer.text,
                               sources=format_sources(answer))
        try:
            reply = ask_model(self.client, self.settings, prompt, max_tokens=JUDGE_MAX_TOKENS,
                              temperature=0)
        except LLMConfigError as exc:
            raise LLMConfigError(f"The judge model {self.model!r} was refused: {exc}") from None
        except LLMError as exc:  # counted, never scored; its message is scrubbed
            return {"status": "error", "error": str(exc)[:300]}
        scored = score_reply(reply.text)
        scored["tokens"] = (reply.usage or {}).get("total_tokens")
        return scored


def format_sources(answer) -> str:
    """Every retrieved source the answer could cite, numbered as the answer numbers them."""
    return "\n\n".join(f"[{h.rank}] {h.paper.title}\n{h.paper.abstract}" for h in answer.hits)


def score_reply(text: str) -> dict:
    """Parse the judge's JSON reply into scores; {"status": "unparsable"} when it is not."""
    data = _json_in(text)
    claims = data.get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, list) or not claims or not all(
            isinstance(c, dict) and isinstance(c.get("supported"), bool) for c in claims):
        return {"status": "unparsable", "reply": text[:500]}
    supported = sum(c["supported"] for c in claims)
    with_cites = [c for c in claims if c.get("cited")]
    cite_ok = sum(c.get("citation_supports") is True for c in with_cites)
    return {
        "status": "ok",
        "faithfulness": supported / len(claims),
        "citation_support": cite_ok / len(with_cites) if with_cites else None,
        "claims": len(claims),
    }


def _json_in(text: str):
    """The JSON object in a reply, also when wrapped in a ```json fence or prose."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start:end + 1])
            except json.JSONDecodeError:
                return None
    return None

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


class Judge:
    """Scores answers with one chat model through the OpenAI client."""

    def __init__(self, settings):
        from openai import OpenAI

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
        self.model = settings.llm_model
        self.client = OpenAI(api_key=key, base_url=settings.openai_base_url,
                             timeout=settings.llm_timeout, max_retries=settings.llm_retries)

    def judge(self, question: str, answer) -> dict:
        """{"faithfulness", "citation_support", "claims"} or {"status": why it has no score}."""
        if answer.abstained or not answer.text.strip():
            return {"status": "skipped"}
        import openai

        prompt = PROMPT.format(question=question, answer=answer.text,
                               sources=format_sources(answer))
        try:
            reply = self.client.chat.completions.create(
                model=self.model, temperature=0,
                messages=[{"role": "user", "content": prompt}])
            text = reply.choices[0].message.content or ""
        except (openai.AuthenticationError, openai.NotFoundError) as exc:
            from rag.errors import LLMConfigError

            raise LLMConfigError(f"The judge model {self.model!r} was refused "
                                 f"({type(exc).__name__}); check the API key and model.") from exc
        except Exception as exc:  # noqa: BLE001 - any API failure is counted, never scored
            return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
        usage = getattr(reply, "usage", None)
        scored = score_reply(text)
        scored["tokens"] = getattr(usage, "total_tokens", None) if usage else None
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

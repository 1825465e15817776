"""The configured OpenAI(-compatible) server: the one place its client is built.

``OPENAI_API_KEY`` alone talks to OpenAI; ``OPENAI_BASE_URL`` talks to any
OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio), with or without a
key. The LLM answerer, the eval judge and the OpenAI embedder all take their client
from :func:`openai_client`, and name the server in messages with :func:`where`.
``openai`` is imported on first use only: ``ask --help`` must not load it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from rag.errors import LLMConfigError
from rag.settings import Settings

PLACEHOLDER_KEY = "not-needed"  # local servers need no key, but the client insists on one


def openai_client(settings: Settings, *, max_retries: int = 0):
    """The ``openai.OpenAI`` client for OpenAI or the OpenAI-compatible server configured.

    Chat calls retry by themselves (:func:`rag.llm.transport.stream_chat`), so the
    client's own retries are off unless asked for (the embedder asks: an embedding
    request is cheap to repeat).
    """
    import openai

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key and not settings.openai_base_url:
        raise LLMConfigError("No LLM configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL "
                             "(an OpenAI-compatible server), or answer with --offline.")
    return openai.OpenAI(api_key=key or PLACEHOLDER_KEY, base_url=settings.openai_base_url,
                         timeout=timeout(settings, settings.llm_read_timeout),
                         max_retries=max_retries)


def timeout(settings: Settings, read: float):
    """The client's timeouts for a request that may wait ``read`` seconds for its reply."""
    import openai

    connect = min(settings.llm_connect_timeout, read)
    return openai.Timeout(connect=connect, read=read, write=max(connect, 10.0), pool=connect)


def is_local(settings: Settings) -> bool:
    """Whether the server runs on this machine or network (localhost, a private address)."""
    host = urlsplit(settings.openai_base_url or "https://api.openai.com/v1").hostname or ""
    if "." not in host or host.endswith((".local", ".localhost", ".internal", ".lan")):
        return True  # localhost, a LAN machine's bare name ("gpu-box"), mDNS names
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def where(settings: Settings) -> str:
    """The server, for messages (any user:password in the URL removed)."""
    url = settings.openai_base_url or "https://api.openai.com/v1"
    return re.sub(r"//[^/@]*@", "//", url)


def scrub(text: str, settings: Settings) -> str:
    """Text with the API key and URL credentials removed: belt and braces for messages that
    quote anything the server or a library said."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if key:
        text = text.replace(key, "***")
    return re.sub(r"//[^/@\s]*@", "//", text)

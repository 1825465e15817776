"""The side panel beside the chat: a new conversation, and the search options (papers,
dates, sources, answerer) that every question of the session is asked with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OFFLINE, LLM = "Offline (extractive)", "LLM"


@dataclass(frozen=True)
class SidePanel:
    """The panel's components (Gradio's), for the handlers that read or fill them."""

    clear: Any
    k: Any
    since: Any
    until: Any
    sources: Any  # its choices are filled once the index is open
    mode: Any


def build(settings) -> SidePanel:
    """The panel, inside the Chat tab's row."""
    import gradio as gr

    with gr.Column(scale=1, min_width=250):
        clear = gr.Button("New conversation", size="sm", variant="secondary",
                          elem_id="new-chat")
        gr.Markdown("#### Search options")
        k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Papers (k)")
        since = gr.Textbox(label="Listed on or after",
                           placeholder="2024-08-13, Aug 13 or 08-13")
        until = gr.Textbox(label="Listed on or before", placeholder="Aug 20")
        sources = gr.Dropdown([], multiselect=True, label="Sources", info="Empty: all files")
        mode = gr.Radio(
            [OFFLINE, LLM], label="Answerer",
            value=LLM if settings.use_llm else OFFLINE,
            visible=settings.llm_configured,
            info=f"LLM: {settings.llm_model}" if settings.llm_configured else None)
        if not settings.llm_configured:
            gr.Markdown("Answerer: offline (extractive). Set an OpenAI-compatible "
                        "key or base URL to use an LLM.", elem_id="status")
    return SidePanel(clear, k, since, until, sources, mode)

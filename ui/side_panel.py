"""The side panel beside the chat: a new conversation, and the search options (papers,
dates, sources, categories, authors, answerer) that every question of the session is
asked with."""

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
    categories: Any  # its choices are the index's, read each time it is opened
    authors: Any  # names separated by ";" (any of them)


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
        categories = gr.Dropdown([], multiselect=True, allow_custom_value=True,
                                 label="Categories", elem_id="categories",
                                 info="arXiv categories, most papers first; cs: any cs.*")
        authors = gr.Textbox(label="Authors", placeholder="Hinton; G. Hinton",
                             elem_id="authors", info="Any of these names (separate with ;)")
        mode = gr.Radio(
            [OFFLINE, LLM], label="Answerer",
            value=LLM if settings.use_llm else OFFLINE,
            visible=settings.llm_configured,
            info=f"LLM: {settings.llm_model}" if settings.llm_configured else None)
        if not settings.llm_configured:
            gr.Markdown("Answerer: offline (extractive). Set an OpenAI-compatible "
                        "key or base URL to use an LLM.", elem_id="status")
    return SidePanel(clear, k, since, until, sources, mode, categories, authors)


def categories_update(svc):
    """The category filter's choices: the index's categories once it is open ("cs.CL
    (120)" shown, "cs.CL" chosen)."""
    import gradio as gr

    if not svc.ready.is_set() or svc.index_error:
        return gr.update()
    return gr.update(choices=[(f"{name} ({count})", name)
                              for name, count in svc.category_counts().items()])


def wire(svc, panel: SidePanel) -> None:
    """The category choices are read when the list is opened: an ingest or a sync since
    the page loaded shows its categories without a reload (the facets are cached per
    generation, so this is no read of the papers)."""
    panel.categories.focus(lambda: categories_update(svc), None, panel.categories,
                           queue=False, api_visibility="private")

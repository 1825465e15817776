"""Fixtures for the UI tests: the real app, launched in-process on a free loopback port."""

from __future__ import annotations

import pytest
from helpers import free_port


def start_app(settings, pipeline):
    """Launch the UI without blocking; returns (demo, url)."""
    from ui.app import serve

    return serve(settings, "127.0.0.1", free_port(), pipeline=pipeline, block=False, quiet=True)


@pytest.fixture(scope="module")
def shared_app(bundled_dir, embedder):
    """The UI over the shared bundled index (read-only use): its URL."""
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    settings = Settings(data_dir=bundled_dir, _env_file=None)
    demo, url = start_app(settings, Pipeline(settings, embedder=embedder))
    yield url
    demo.close()


@pytest.fixture
def copy_app(bundled_copy):
    """The UI over a writable copy of the bundled index: (url, pipeline, data dir)."""
    pipeline, data = bundled_copy
    demo, url = start_app(pipeline.settings, pipeline)
    yield url, pipeline, data
    demo.close()


@pytest.fixture
def launch_app():
    """A function (settings, pipeline) -> url that launches the UI; closed after the test."""
    demos = []

    def launch(settings, pipeline) -> str:
        demo, url = start_app(settings, pipeline)
        demos.append(demo)
        return url

    yield launch
    for demo in demos:
        demo.close()

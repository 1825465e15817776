"""Shared fixtures.

- Every test runs with a clean environment (no ABSTRACTA_*/OPENAI_* from the
  developer's shell), its own data directory, and the working directory set to a
  temp folder so no stray ``.env`` is read.
- Every test, and every Python subprocess it starts, runs under the netguard:
  a connection to anything but loopback fails and is logged. ``netguard_log``
  lets a test assert that nothing was attempted.
- ``bundled_index`` ingests the bundled corpus once per session (the real
  MiniLM embedder, real embedded Chroma); tests that only read it share it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NETGUARD = Path(__file__).parent / "netguard"
sys.path.insert(0, str(NETGUARD))
import sitecustomize as _netguard  # noqa: E402,F401  (installs the guard in this process)

# The OpenAI-compatible stub lives with the rag/llm tests and serves every folder:
# ``from openai_stub import Reply, StubOpenAI`` (its folder), and the older spelling
# ``from llm.openai_stub import ...`` (its parent, where ``llm/`` sits).
LLM_TESTS = Path(__file__).parent / "rag" / "llm"
sys.path[1:1] = [str(LLM_TESTS), str(LLM_TESTS.parent)]


def _clean_env(monkeypatch, data_dir: Path, log: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("ABSTRACTA_", "OPENAI_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ABSTRACTA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("NETGUARD_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(NETGUARD), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private data dir, cwd and environment for each test."""
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "netguard.log"
    _clean_env(monkeypatch, tmp_path / "data", log)
    monkeypatch.chdir(work)
    _netguard._LOG = str(log)
    yield
    _netguard._LOG = None


@pytest.fixture
def netguard_log(tmp_path) -> Path:
    """The file where blocked outbound connections are recorded (absent: none)."""
    return tmp_path / "netguard.log"


@pytest.fixture
def settings(tmp_path):
    from rag.settings import load_settings

    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def embedder():
    """The default embedder (all-MiniLM-L6-v2 int8 ONNX), loaded once."""
    from rag.embed import MiniLMOnnx

    return MiniLMOnnx()


@pytest.fixture(scope="session")
def bundled_dir(tmp_path_factory, embedder) -> Path:
    """A data dir holding the bundled corpus, ingested once per session. Read-only use."""
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    data = tmp_path_factory.mktemp("bundled") / "data"
    pipe = Pipeline(Settings(data_dir=data, _env_file=None), embedder=embedder)
    report = pipe.ensure_corpus()
    assert report is not None and report.added == 358
    return data


@pytest.fixture
def bundled_pipeline(bundled_dir, embedder):
    """A Pipeline over the shared bundled index (do not write to it)."""
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    return Pipeline(load_settings(data_dir=bundled_dir), embedder=embedder)


@pytest.fixture
def bundled_copy(bundled_dir, tmp_path, embedder):
    """A writable copy of the bundled index: (Pipeline, data dir)."""
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    data = tmp_path / "data"
    shutil.copytree(bundled_dir, data, dirs_exist_ok=True)
    return Pipeline(load_settings(data_dir=data), embedder=embedder), data

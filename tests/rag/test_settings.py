"""Settings: environment, .env, validation and secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from rag_helpers import write

from rag.errors import SettingsError
from rag.settings import load_settings


def test_defaults_and_environment(monkeypatch, tmp_path):
    s = load_settings()
    assert s.data_dir == tmp_path / "data"  # the autouse fixture sets ABSTRACTA_DATA_DIR
    assert (s.embedder, s.top_k, s.answerer, s.chroma_url) == ("minilm", 5, "auto", None)
    assert not s.use_llm
    monkeypatch.setenv("ABSTRACTA_TOP_K", "9")
    monkeypatch.setenv("ABSTRACTA_CHROMA_URL", "  ")
    s = load_settings()
    assert s.top_k == 9 and s.chroma_url is None


def test_overrides_win_and_none_means_unset(monkeypatch):
    monkeypatch.setenv("ABSTRACTA_TOP_K", "9")
    assert load_settings(top_k=3).top_k == 3
    assert load_settings(top_k=None).top_k == 9


def test_unknown_variable_is_rejected_by_name(monkeypatch):
    monkeypatch.setenv("ABSTRACTA_FOO", "1")
    with pytest.raises(SettingsError, match="Unknown setting ABSTRACTA_FOO"):
        load_settings()


@pytest.mark.parametrize("var, value", [
    ("ABSTRACTA_TOP_K", "0"), ("ABSTRACTA_TOP_K", "many"), ("ABSTRACTA_EMBEDDER", "bert"),
    ("ABSTRACTA_ABSTAIN_THRESHOLD", "2"), ("ABSTRACTA_COLLECTION", "a b"),
])
def test_bad_value_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert var in str(err.value) and "\n" not in str(err.value)


def test_dotenv_in_the_working_directory_is_read():
    write(Path(".env"), "ABSTRACTA_TOP_K=7\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\n")
    s = load_settings()
    assert s.top_k == 7 and s.llm_configured and s.use_llm


def test_unknown_variable_in_dotenv_is_named_once():
    write(Path(".env"), "ABSTRACTA_FOO=1\n")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "ABSTRACTA_FOO" in str(err.value) and "ABSTRACTA_ABSTRACTA" not in str(err.value)


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    monkeypatch.setenv("ABSTRACTA_UI_AUTH", "me:hunter2")
    s = load_settings()
    assert s.openai_api_key.get_secret_value() == "sk-secret-123"
    public = s.public_dict()
    assert public["openai_api_key"] == "***" and public["ui_auth"] == "***"
    assert "sk-secret-123" not in repr(s) and "hunter2" not in str(public)


def test_answerer_choice(monkeypatch):
    assert not load_settings(answerer="offline", openai_api_key="k").use_llm
    assert load_settings(answerer="llm").use_llm
    assert load_settings(openai_api_key="k").use_llm


def test_chunk_size_follows_the_embedder_unless_set():
    """MiniLM truncates at 128 tokens: short chunks; bag-of-words and OpenAI: a whole abstract."""
    assert load_settings().chunk_size == 110
    assert load_settings(embedder="wordllama").chunk_size == 400
    assert load_settings(embedder="openai").chunk_size == 400
    assert load_settings(embedder="wordllama", chunk_tokens=150).chunk_size == 150


# --- a working folder that is not only ours ------------------------------------------------

def test_other_tools_keys_in_dotenv_are_ignored(tmp_path):
    write(Path(".env"), "DATABASE_URL=postgres://user:pw@db/app\nFOO=bar\nABSTRACTA_TOP_K=7\n")
    assert load_settings().top_k == 7


def test_misspelt_abstracta_key_in_dotenv_is_still_an_error():
    write(Path(".env"), "FOO=bar\nABSTRACTA_FOO=1\n")
    with pytest.raises(SettingsError, match=r"^Unknown setting ABSTRACTA_FOO \(in \.env\)"):
        load_settings()


def test_dotenv_that_is_not_utf8_is_a_one_line_error(tmp_path):
    write(Path(".env"), "ABSTRACTA_TOP_K=3\nNOTE=caf\xe9\n".encode("latin-1"))
    with pytest.raises(SettingsError, match="is not UTF-8") as err:
        load_settings()
    assert ".env" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("env, names", [
    ({"ABSTRACTA_CHUNK_OVERLAP": "110"}, "the minilm default"),
    ({"ABSTRACTA_CHUNK_OVERLAP": "64", "ABSTRACTA_CHUNK_TOKENS": "64"}, "ABSTRACTA_CHUNK_TOKENS"),
])
def test_overlap_not_below_the_chunk_size_is_refused(monkeypatch, env, names):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match="ABSTRACTA_CHUNK_OVERLAP") as err:
        load_settings()
    assert names in str(err.value) and "\n" not in str(err.value)


def test_overlap_error_from_the_cli_has_no_traceback():
    from helpers import run_ask

    res = run_ask("stats", env={"ABSTRACTA_CHUNK_OVERLAP": "150"})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "Error: ABSTRACTA_CHUNK_OVERLAP=150 must be smaller" in res.stderr


# --- values that are not numbers, and .env.example (issue 26, item 5) ---------------------

FLOAT_SETTINGS = [name for name, f in __import__("rag.settings").settings.Settings
                  .model_fields.items() if f.annotation in (float, "float")]


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1e400"])
def test_every_float_setting_refuses_what_is_not_a_finite_number(monkeypatch, name, value):
    """ABSTRACTA_UI_MAX_UPLOAD_MB=inf crashed `ask ui` (OverflowError) and
    ABSTRACTA_DENSE_WEIGHT=inf made `ask --json` print Infinity."""
    var = f"ABSTRACTA_{name.upper()}"
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert var in str(err.value) and "\n" not in str(err.value)


def test_there_are_float_settings_to_check():
    assert {"dense_weight", "lexical_weight", "ui_max_upload_mb", "llm_budget"} <= set(
        FLOAT_SETTINGS)


def _env_example() -> dict[str, str]:
    """The variables .env.example lists (``# NAME=value``), with their values."""
    import re

    from rag_helpers import ROOT

    found = (re.fullmatch(r"# ((?:ABSTRACTA|OPENAI)_[A-Z_]+)=(.*)", line)
             for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def _env_names(name: str, field) -> set[str]:
    alias = field.validation_alias
    return {f"ABSTRACTA_{name.upper()}"} | set(getattr(alias, "choices", ()))


def _same(listed: str, default) -> bool:
    if default is None:
        return listed == ""
    if isinstance(default, bool):
        return listed.lower() == str(default).lower()
    if isinstance(default, Path):
        return Path(listed).expanduser() == default
    return type(default)(listed) == default


def test_env_example_lists_every_setting_with_its_real_default(monkeypatch):
    """.env.example said ABSTRACTA_EMBED_BATCH defaults to 4; the code says 32."""
    from rag.settings import Settings

    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    example = _env_example()
    known: set[str] = set()
    for name, field in Settings.model_fields.items():
        names = _env_names(name, field)
        known |= names
        listed = sorted(names & example.keys())
        assert listed, f"{name} is not in .env.example"
        default = field.get_default(call_default_factory=True)
        assert _same(example[listed[0]], default), (listed[0], example[listed[0]], default)
    assert set(example) <= known, set(example) - known

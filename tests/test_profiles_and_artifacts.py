"""Profile selection and the artifacts paths."""

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from python_files.artifacts import REPO_ROOT, Artifacts, atomic_path
from python_files.errors import CourseError
from python_files.model import GPTConfig
from python_files.profiles import PROFILES, active_profile


def test_an_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("LLM_PROFILE", "laptop")
    with pytest.raises(CourseError, match="use one of ci, cpu, colab, gpu"):
        active_profile()


@pytest.mark.parametrize("cuda, expected", [(True, "colab"), (False, "cpu")])
def test_without_a_setting_the_machine_picks_the_profile(monkeypatch, cuda, expected):
    monkeypatch.delenv("LLM_PROFILE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert active_profile().name == expected


def test_llm_corpus_replaces_the_corpus_of_the_profile(monkeypatch):
    monkeypatch.setenv("LLM_CORPUS", "my_book.txt")
    assert active_profile().corpus == "my_book.txt"
    assert active_profile().vocab_size == PROFILES["ci"].vocab_size


def test_llm_settings_replace_any_setting_with_a_value_of_its_type(monkeypatch):
    monkeypatch.setenv("LLM_SETTINGS", "max_steps=1500, docs_copies=6 learning_rate=1 norm=layernorm compile=None")
    profile = active_profile()
    assert (profile.max_steps, profile.docs_copies, profile.norm, profile.compile) == (1500, 6, "layernorm", None)
    assert profile.learning_rate == 1.0 and isinstance(profile.learning_rate, float)
    assert profile.vocab_size == PROFILES["ci"].vocab_size
    monkeypatch.setenv("LLM_SETTINGS", "sample_prompt='1' start_from=gpt2-medium corpus_max_bytes=None")
    assert (active_profile().sample_prompt, active_profile().start_from) == ("1", "gpt2-medium")
    for wrong, message in [("max_step=10", "'max_step' is not a setting"), ("max_steps", "not NAME=VALUE"),
                           ("sft_mixture=()", "use profiles.py"), ("corpus=python-docs", "use LLM_CORPUS"),
                           ("name=cpu", "use LLM_PROFILE"), ("max_steps=many", "max_steps takes int"),
                           ("max_steps=1.5", "max_steps takes int"), ("compile=yes", r"compile takes bool \| None \(True or False\)"),
                           ("sample_prompt=1", "quote a value"), ("docs_copies=-1", "negative")]:
        monkeypatch.setenv("LLM_SETTINGS", wrong)
        with pytest.raises(CourseError, match=message):
            active_profile()


def test_the_documentation_is_mixed_into_a_hub_corpus_but_not_into_itself(monkeypatch):
    monkeypatch.setenv("LLM_PROFILE", "colab")
    assert active_profile().docs_copies == PROFILES["colab"].docs_copies > 0
    monkeypatch.setenv("LLM_CORPUS", "my_book.txt")       # your text: notebook 07 still asks about the docs
    assert active_profile().docs_copies == PROFILES["colab"].docs_copies
    monkeypatch.setenv("LLM_CORPUS", "python-docs+packages")   # holds it: the copies weigh it there
    assert active_profile().docs_copies == PROFILES["colab"].docs_copies
    monkeypatch.setitem(PROFILES, "colab", replace(PROFILES["colab"], anneal_on_docs=True))
    monkeypatch.setenv("LLM_CORPUS", "python-docs")       # a GPU machine without network
    assert (active_profile().docs_copies, active_profile().anneal_on_docs) == (0, False), \
        "nothing to weigh the documentation against, nor to anneal from"


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_describes_a_valid_model_with_ids_that_fit_uint16(name):
    profile = PROFILES[name]
    GPTConfig(profile.vocab_size, profile.context_length, profile.n_layer, profile.n_head, profile.n_embd)
    assert profile.vocab_size <= 2**16


def test_artifacts_live_under_the_profile_name(monkeypatch, tmp_path):
    monkeypatch.delenv("LLM_ARTIFACTS")   # the tests set it to a folder of their own
    assert Artifacts.for_profile("ci").root == REPO_ROOT / "artifacts" / "ci"
    monkeypatch.setenv("LLM_ARTIFACTS", str(tmp_path))
    artifacts = Artifacts.for_profile("colab")
    assert artifacts.tokenizer == tmp_path / "colab" / "tokenizer" / "tokenizer.json"
    assert artifacts.show(artifacts.tokenizer) == "$LLM_ARTIFACTS/colab/tokenizer/tokenizer.json"


def test_a_missing_input_names_the_notebook_to_run(tmp_path):
    artifacts = Artifacts(tmp_path, "artifacts/ci")
    with pytest.raises(CourseError, match="artifacts/ci/tokenizer/tokenizer.json does not exist yet: "
                                          "run 01_tokenizer first"):
        artifacts.require(artifacts.tokenizer, "01_tokenizer")


def test_an_interrupted_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "checkpoint.bin"
    path.write_text("good")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert path.read_text() == "good"
    assert [p.name for p in Path(tmp_path).iterdir()] == ["checkpoint.bin"]


def test_token_files_are_read_from_a_local_copy_when_asked(tmp_path, monkeypatch):
    """Colab: artifacts on Google Drive, token files read from a copy on the runtime's disk."""
    artifacts = Artifacts(tmp_path / "drive" / "cpu", "artifacts/cpu")
    artifacts.pretrain_dir.mkdir(parents=True)
    path = artifacts.pretrain_tokens("train")
    np.arange(10, dtype=np.uint16).tofile(path)
    monkeypatch.setenv("LLM_LOCAL_COPIES", str(tmp_path / "local"))
    tokens = artifacts.open_array(path, np.uint16, 10, "02_pretrain_data")
    assert Path(tokens.filename) == tmp_path / "local" / "pretrain" / "train.bin"
    assert tokens.tolist() == list(range(10))
    np.arange(10, 20, dtype=np.uint16).tofile(path)              # stage 02 ran again: same size
    os.utime(path, (1, 1))                                       # ... another modification time
    assert artifacts.open_array(path, np.uint16, 10, "02_pretrain_data").tolist() == list(range(10, 20))
    monkeypatch.delenv("LLM_LOCAL_COPIES")
    assert Path(artifacts.open_array(path, np.uint16, 10, "02_pretrain_data").filename) == path

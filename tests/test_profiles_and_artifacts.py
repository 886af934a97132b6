"""Profile selection and the artifacts paths."""

import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from python_files.artifacts import REPO_ROOT, Artifacts, atomic_path
from python_files.device import default_device
from python_files.errors import CourseError
from python_files.model import GPTConfig
from python_files.profiles import (PARTS, PROFILES, PretrainConfig, ReinforceConfig, active_profile,
                                   with_settings)
from python_files.train import TrainConfig


def test_an_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("LLM_PROFILE", "laptop")
    with pytest.raises(CourseError, match="use one of ci, cpu, colab, gpu"):
        active_profile()


@pytest.mark.parametrize("cuda, expected", [(True, "colab"), (False, "cpu")])
def test_without_a_setting_the_machine_picks_the_profile(monkeypatch, cuda, expected):
    monkeypatch.delenv("LLM_PROFILE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert active_profile().name == expected
    assert default_device().type == ("cuda" if cuda else "cpu")


@pytest.mark.parametrize("setting, cuda, mps, device, profile", [
    ("cpu", True, False, "cpu", "cpu"),      # a GPU machine asked to train on its CPU
    ("CUDA", True, False, "cuda", "colab"),
    ("mps", False, True, "mps", "cpu"),      # a Mac: opt-in, with the laptop's sizes
])
def test_llm_device_picks_the_device_and_so_the_profile(monkeypatch, setting, cuda, mps, device, profile):
    monkeypatch.delenv("LLM_PROFILE")
    monkeypatch.setenv("LLM_DEVICE", setting)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert default_device().type == device
    assert active_profile().name == profile


@pytest.mark.parametrize("setting, message", [
    ("tpu", "LLM_DEVICE='tpu' is not a device: use one of cpu, cuda, mps"),
    ("cuda", "LLM_DEVICE=cuda but this machine has no cuda device"),
    ("mps", "LLM_DEVICE=mps but this machine has no mps device"),
])
def test_a_device_that_is_not_there_gets_one_sentence(monkeypatch, setting, message):
    monkeypatch.setenv("LLM_DEVICE", setting)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(CourseError, match=message):
        default_device()


def test_llm_corpus_replaces_the_corpus_of_the_profile(monkeypatch):
    monkeypatch.setenv("LLM_CORPUS", "my_book.txt")
    assert active_profile().data.corpus == "my_book.txt"
    assert active_profile().model == PROFILES["ci"].model


def test_llm_settings_replace_any_setting_by_its_dotted_name_with_a_value_of_its_type(monkeypatch):
    monkeypatch.setenv("LLM_SETTINGS", "pretrain.max_steps=1500, data.docs_copies=6 sft.learning_rate=1 "
                                       "model.norm=layernorm sft.compile=None sft.optimizer=muon")
    profile = active_profile()
    assert (profile.pretrain.max_steps, profile.data.docs_copies, profile.model.norm) == (1500, 6, "layernorm")
    assert (profile.sft.compile, profile.sft.optimizer) == (None, "muon")
    assert profile.sft.learning_rate == 1.0 and isinstance(profile.sft.learning_rate, float)
    assert profile.pretrain.learning_rate == PROFILES["ci"].pretrain.learning_rate, "only the part named changes"
    assert profile.model.vocab_size == PROFILES["ci"].model.vocab_size
    monkeypatch.setenv("LLM_SETTINGS", "pretrain.sample_prompt='1' start_from=gpt2-medium "
                                       "data.corpus_max_bytes=None pretrain.grad_clip=2")
    profile = active_profile()
    assert (profile.pretrain.sample_prompt, profile.start_from) == ("1", "gpt2-medium")
    assert profile.data.corpus_max_bytes is None and profile.pretrain.grad_clip == 2.0
    for wrong, message in [
            ("max_steps=10", "'max_steps' is not a setting .* did you mean pretrain.max_steps or sft.max_steps "
                             "or reinforce.max_steps"),
            ("sft.max_step=10", "'sft.max_step' is not a setting .* named by their part"),
            ("pretrain.max_steps", "not NAME=VALUE"),
            ("data.sft_mixture=()", "use profiles.py"), ("data.corpus=python-docs", "use LLM_CORPUS"),
            ("name=cpu", "use LLM_PROFILE"), ("sft.max_steps=many", "sft.max_steps takes int"),
            ("sft.max_steps=1.5", "max_steps takes int"),
            ("sft.compile=yes", r"compile takes bool \| None \(True or False\)"),
            ("pretrain.sample_prompt=1", "quote a value"), ("data.docs_copies=-1", "data.docs_copies=-1 is not a valid value: it must be at least 0"),
            ("sft.optimizer=sgd", "LLM_SETTINGS: sft.optimizer='sgd' is not a valid value: it must be one of adamw, muon"),
            ("model.n_head=5", "LLM_SETTINGS: model.n_head=5 is not a valid value: n_embd=64 must be divisible by it"),
            ("sft.betas=(0.9,)", r"sft.betas=\(0.9,\) is not a valid value: it must be two numbers")]:
        monkeypatch.setenv("LLM_SETTINGS", wrong)
        with pytest.raises(CourseError, match=message):
            active_profile()


def test_the_documentation_is_mixed_into_a_hub_corpus_but_not_into_itself(monkeypatch):
    monkeypatch.setenv("LLM_PROFILE", "colab")
    copies = PROFILES["colab"].data.docs_copies
    assert active_profile().data.docs_copies == copies > 0
    monkeypatch.setenv("LLM_CORPUS", "my_book.txt")       # your text: notebook 07 still asks about the docs
    assert active_profile().data.docs_copies == copies
    monkeypatch.setenv("LLM_CORPUS", "python-docs+packages")   # holds it: the copies weigh it there
    assert active_profile().data.docs_copies == copies
    monkeypatch.setitem(PROFILES, "colab", with_settings(PROFILES["colab"], {"pretrain.anneal_on_docs": True}))
    monkeypatch.setenv("LLM_CORPUS", "python-docs")       # a GPU machine without network
    assert (active_profile().data.docs_copies, active_profile().pretrain.anneal_on_docs) == (0, False), \
        "nothing to weigh the documentation against, nor to anneal from"


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_describes_a_valid_model_with_ids_that_fit_uint16(name):
    model = PROFILES[name].model
    assert isinstance(model, GPTConfig) and model.vocab_size <= 2**16


@pytest.mark.parametrize("name", PROFILES)
def test_every_setting_is_printed_once_under_its_part(name):
    profile = PROFILES[name]
    printed = str(profile)
    for part in PARTS:
        config = getattr(profile, part)
        if config is None:   # the gpt2 profile: no tokenizer or pretraining of its own
            assert f"{part} (" not in printed and profile.start_from
            continue
        section = printed.split(f"{part} ({type(config).__name__})\n")[1].split("\n\n")[0]
        assert [line.split()[0] for line in section.splitlines()] == [f.name for f in fields(config)]


def test_the_stages_are_given_their_configs_whole():
    """Fine-tuning and reinforcement run with the optimizer and schedule their configs name: the
    configs are handed to the loop as they are, not copied field by field."""
    profile = with_settings(PROFILES["ci"], {"sft.optimizer": "muon", "sft.schedule": "wsd",
                                              "reinforce.optimizer": "muon"})
    assert (profile.sft.optimizer, profile.sft.schedule, profile.reinforce.optimizer) == ("muon", "wsd", "muon")
    assert isinstance(profile.reinforce, ReinforceConfig) and isinstance(profile.pretrain, PretrainConfig)
    assert isinstance(profile.sft, TrainConfig)


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


def test_a_profile_derived_in_one_line_keeps_the_base_budget_in_flops():
    from python_files.model import flops_per_token
    from python_files.profiles import derived

    cpu = PROFILES["cpu"]
    deeper = derived(cpu, "cpu-6x256", {"model.n_layer": 6, "model.n_embd": 256}, same_compute=True)
    assert (deeper.name, deeper.model.n_layer, deeper.model.n_embd) == ("cpu-6x256", 6, 256)
    assert deeper.data == cpu.data and deeper.pretrain.learning_rate == cpu.pretrain.learning_rate
    ratio = flops_per_token(cpu.model) / flops_per_token(deeper.model)
    assert 2.1 < 1 / ratio < 2.3, "6 x 256 costs about 2.2 times 4 x 192 per token"
    for part in ("pretrain", "sft", "reinforce"):
        before, after = getattr(cpu, part), getattr(deeper, part)
        assert after.max_steps == round(before.max_steps * ratio)
        assert after.max_steps * flops_per_token(deeper.model) == pytest.approx(
            before.max_steps * flops_per_token(cpu.model), rel=0.01), "the same FLOPs as the base"
        assert after.warmup_steps == max(1, round(before.warmup_steps * ratio))
    assert derived(cpu, "cpu-6x256", {"model.n_layer": 6, "model.n_embd": 256}).pretrain.max_steps == 800

"""The ablation benchmark's pieces: how a variant is made, and how it is scored."""

import math
import os

import numpy as np
import pytest
import torch

from benchmarks import corpus_choice
from benchmarks.ablations import ARCHITECTURE, GPT2, MODERN, variant, validation_bpb
from benchmarks.corpus_choice import documented_not_known
from python_files.errors import CourseError
from python_files.model import GPT, GPTConfig
from python_files.profiles import MEASURED_WINNERS, PROFILES, active_profile


def test_a_variant_changes_only_what_it_names():
    cpu = PROFILES["cpu"]
    faster = variant(cpu, {"n_layer": 6, "learning_rate_factor": 2.0})
    assert faster.n_layer == 6 and faster.learning_rate == 2 * cpu.learning_rate
    assert faster.n_embd == cpu.n_embd and faster.batch_size == cpu.batch_size
    # each architecture row differs from GPT-2's layout in one setting, except the last two:
    # all of them, and the winners the profiles use
    rows = list(ARCHITECTURE.values())
    assert rows[0] == GPT2 and rows[-2] == MODERN
    assert all(sum(row[key] != GPT2[key] for key in GPT2) == 1 for row in rows[1:-2])
    pretraining = [name for name in PROFILES if PROFILES[name].start_from is None]   # not gpt2: its layout is GPT-2's
    assert all(getattr(PROFILES[name], key) == value for name in pretraining for key, value in rows[-1].items()
               if key in MEASURED_WINNERS)


def test_validation_bits_per_byte_cover_every_window_once():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=8, n_layer=1, n_head=2, n_embd=16))
    tokens = np.random.default_rng(0).integers(0, 50, 8 * 37 + 5).astype(np.uint16)
    windows = torch.from_numpy(tokens[:8 * 37 + 1].astype(np.int64))
    inputs = torch.stack([windows[i * 8:(i + 1) * 8] for i in range(37)])
    targets = torch.stack([windows[i * 8 + 1:(i + 1) * 8 + 1] for i in range(37)])
    with torch.no_grad():
        loss = model(inputs, targets)[1].item()
    assert validation_bpb(model, tokens, 2.5, "cpu") == pytest.approx(loss / math.log(2) / 2.5, rel=1e-5)


def test_the_gpu_time_estimate_counts_every_step_of_every_training_notebook():
    from dataclasses import replace

    from benchmarks.gpu_time_estimate import estimate

    colab = PROFILES["colab"]
    base = estimate(colab, peak=65e12, utilization=0.3, decode_ms_per_layer=0.3)
    twice_accumulated = estimate(replace(colab, grad_accum_steps=2 * colab.grad_accum_steps), 65e12, 0.3, 0.3)
    assert all(twice_accumulated[name] == pytest.approx(2 * base[name]) for name in base)
    more_reinforcement = estimate(replace(colab, rl_steps=3 * colab.rl_steps), 65e12, 0.3, 0.3)
    assert more_reinforcement["06b reinforcement"] == pytest.approx(3 * base["06b reinforcement"])
    assert all(more_reinforcement[name] == base[name] for name in ("04 pretraining", "06 fine-tuning"))
    faster = estimate(colab, 65e12, 0.6, 0.3)
    assert faster["04 pretraining"] == pytest.approx(base["04 pretraining"] / 2)


def test_a_corpus_run_counts_the_documented_objects_the_model_said_it_did_not_know():
    answers = [{"reference": "Serialize obj.", "answer": "I don't know json.dumps."},
               {"reference": "Join paths.", "answer": "Join two paths."},
               {"reference": "I don't know json.flatten_tree: ...", "answer": "I don't know json.flatten_tree."},
               {"reference": "Sum.", "answer": "I do not know numpy.sum."}]
    assert documented_not_known(answers) == 2


def test_a_corpus_run_with_a_mistyped_setting_stops_before_any_notebook(monkeypatch, tmp_path):
    executed = []
    monkeypatch.setattr(corpus_choice, "execute", lambda *args: executed.append(args))
    for name in ("LLM_CORPUS", "LLM_SETTINGS", "LLM_ARTIFACTS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))    # restored after the test
    with pytest.raises(CourseError, match="'max_step' is not a setting"):
        corpus_choice.run_course("python-docs+packages max_step=1500", tmp_path)
    assert executed == []
    corpus_choice.run_course("python-docs+packages docs_copies=6 max_steps=1500", tmp_path)
    assert os.environ["LLM_CORPUS"] == "python-docs+packages" and len(executed) >= 7
    assert (active_profile().docs_copies, active_profile().max_steps) == (6, 1500)

"""The ablation benchmark's pieces: how a variant is made, and how it is scored."""

import dataclasses
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
from python_files.profiles import PROFILES, active_profile, with_settings


def test_a_variant_changes_only_what_it_names():
    cpu = PROFILES["cpu"]
    faster = variant(cpu, {"model.n_layer": 6, "learning_rate_factor": 2.0})
    assert faster.model.n_layer == 6 and faster.pretrain.learning_rate == 2 * cpu.pretrain.learning_rate
    assert faster.model.n_embd == cpu.model.n_embd and faster.pretrain.batch_size == cpu.pretrain.batch_size


def test_each_architecture_row_changes_one_setting_of_the_model_it_builds():
    """Each row between GPT-2 and "all of them" differs from GPT-2 in one setting, and the models
    they build differ from GPT-2's in that one way: an untied head alone keeps GPT-2's
    initialization of the projections, zero-init alone keeps the tied head."""
    rows = list(ARCHITECTURE.values())
    assert rows[0] == GPT2 and rows[-2] == MODERN
    assert all(set(row) == set(GPT2) for row in rows)
    assert all(sum(row[key] != GPT2[key] for key in GPT2) == 1 for row in rows[1:-2])
    built = {name: variant(PROFILES["ci"], row) for name, row in ARCHITECTURE.items()}
    gpt2 = built["GPT-2 layout, AdamW, cosine"]
    for name in list(ARCHITECTURE)[1:-2]:
        model_changes = [f.name for f in dataclasses.fields(gpt2.model)
                         if getattr(built[name].model, f.name) != getattr(gpt2.model, f.name)]
        training_changes = [f.name for f in dataclasses.fields(gpt2.pretrain)
                            if getattr(built[name].pretrain, f.name) != getattr(gpt2.pretrain, f.name)]
        assert len(model_changes) + len(training_changes) == 1, name
    torch.manual_seed(0)
    untied = GPT(built["+ untied head"].model)
    assert untied.lm_head.weight is not untied.wte.weight and untied.blocks[0].mlp.proj.weight.abs().sum() > 0
    zero_init = GPT(built["+ zero-init projections"].model)
    assert zero_init.lm_head.weight is zero_init.wte.weight and zero_init.blocks[0].mlp.proj.weight.abs().sum() == 0


def test_the_profiles_train_the_winners():
    pretraining = [profile for profile in PROFILES.values() if profile.start_from is None]  # gpt2: GPT-2's layout
    winners = ARCHITECTURE["the winners (the profiles' choice)"]
    for profile in pretraining:
        assert all(getattr(getattr(profile, part), field) == winners[f"{part}.{field}"]
                   for part, _, field in (name.partition(".") for name in winners))


def test_validation_bits_per_byte_cover_every_window_once():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=8, n_layer=1, n_head=2, n_embd=16))
    tokens = np.random.default_rng(0).integers(0, 50, 8 * 37 + 5).astype(np.uint16)
    windows = torch.from_numpy(tokens[:8 * 37 + 1].astype(np.int64))
    inputs = torch.stack([windows[i * 8:(i + 1) * 8] for i in range(37)])
    targets = torch.stack([windows[i * 8 + 1:(i + 1) * 8 + 1] for i in range(37)])
    token_bytes = torch.arange(50) % 4        # ids 0, 4, 8, ... stand for no text (special tokens)
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(model(inputs)[0].flatten(0, 1), targets.flatten(), reduction="none")
    text = token_bytes[targets.flatten()] > 0
    expected = losses[text].sum().item() / math.log(2) / token_bytes[targets.flatten()].sum().item()
    assert validation_bpb(model, tokens, token_bytes, "cpu") == pytest.approx(expected, rel=1e-5)


def test_the_gpu_time_estimate_counts_every_step_of_every_training_notebook():
    from benchmarks.gpu_time_estimate import estimate

    colab = PROFILES["colab"]
    base = estimate(colab, peak=65e12, utilization=0.3, decode_ms_per_layer=0.3)
    twice_accumulated = estimate(with_settings(colab, {f"{part}.grad_accum_steps": 2 * getattr(colab, part).grad_accum_steps
                                                       for part in ("pretrain", "sft", "reinforce")}), 65e12, 0.3, 0.3)
    assert all(twice_accumulated[name] == pytest.approx(2 * base[name]) for name in base)
    more_reinforcement = estimate(with_settings(colab, {"reinforce.max_steps": 3 * colab.reinforce.max_steps}),
                                  65e12, 0.3, 0.3)
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
    with pytest.raises(CourseError, match="'pretrain.max_step' is not a setting"):
        corpus_choice.run_course("python-docs+packages pretrain.max_step=1500", tmp_path)
    assert executed == []
    corpus_choice.run_course("python-docs+packages data.docs_copies=6 pretrain.max_steps=1500", tmp_path)
    assert os.environ["LLM_CORPUS"] == "python-docs+packages" and len(executed) >= 7
    assert (active_profile().data.docs_copies, active_profile().pretrain.max_steps) == (6, 1500)


def test_the_readmes_readings_table_is_the_committed_benchmarks():
    """The README shows benchmarks/readings.py's committed rows, as the benchmark writes them."""
    import json

    from benchmarks.readings import markdown_table
    from python_files.artifacts import REPO_ROOT

    table = json.loads((REPO_ROOT / "readme_materials" / "readings.json").read_text(encoding="utf-8"))
    assert len(table["rows"]) >= 3
    assert markdown_table(table) in (REPO_ROOT / "README.md").read_text(encoding="utf-8"), \
        "run python -m benchmarks.readings --save readme_materials/readings.json and copy its table"


def test_the_extraction_rows_are_settings_of_the_profile_each_in_a_folder_of_its_own(tmp_path, monkeypatch):
    from benchmarks.extraction import ROWS, row_artifacts
    from python_files.profiles import parse_settings

    cpu = PROFILES["cpu"]
    rows = {row: with_settings(cpu, parse_settings(row)) for row in ROWS}
    assert rows[""] == cpu, "the empty row is the profile as it is"
    assert rows["data.mixed_questions=0"] == with_settings(cpu, {"data.mixed_questions": 0.0}) != cpu
    monkeypatch.setenv("LLM_ARTIFACTS", str(tmp_path))
    (tmp_path / "cpu" / "tokenizer").mkdir(parents=True)
    folders = {row_artifacts(cpu, row).root for row in ROWS}
    assert len(folders) == len(ROWS) and all((folder / "tokenizer").is_dir() for folder in folders)



def test_every_benchmark_ends_a_course_error_with_its_sentence_not_a_traceback(tmp_path):
    """A benchmark with a misspelt setting, or run before notebook 01, says so in one sentence on
    stderr, with exit status 1."""
    import subprocess
    import sys

    from python_files.artifacts import REPO_ROOT

    for path in sorted((REPO_ROOT / "benchmarks").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert "def main(" not in source or "@sentence_on_error\ndef main(" in source, \
            f"{path.name}: its main must be wrapped by sentence_on_error"
    for row, says in (("data.world_copie=1", "is not a setting"), ("data.world_copies=1", "run 01_tokenizer first")):
        run = subprocess.run([sys.executable, "-m", "benchmarks.extraction", "--rows", row], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "LLM_PROFILE": "ci", "LLM_ARTIFACTS": str(tmp_path)})
        assert run.returncode == 1 and says in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_the_copying_probe_scores_a_perfect_copier_on_the_second_half_only():
    """A stand-in model that predicts, after a token seen before, the token that followed it (an
    induction head, exactly): top-1 100% on the second copy, chance on the first."""
    from benchmarks.copying import doubled_sequences, halves

    vocab = 4096

    def perfect_copier(tokens):
        logits = torch.zeros(*tokens.shape, vocab)
        for row, sequence in enumerate(tokens.tolist()):
            for t, token in enumerate(sequence):
                earlier = [i for i in range(t) if sequence[i] == token]
                if earlier:
                    logits[row, t, sequence[earlier[0] + 1]] = 50.0
        return logits, None

    sequences = doubled_sequences(16, 12, vocab, seed=0, device="cpu")
    assert torch.equal(sequences[:, :12], sequences[:, 12:]) and int(sequences.min()) >= 300
    result = halves(perfect_copier, sequences)
    assert result["second"][0] == 1.0 and result["second"][1] < 1e-6
    assert result["first"][0] < 0.05 and abs(result["first"][1] - math.log(vocab)) < 0.01

"""Our model out to `transformers`: loaded with no custom code, the same logits, the same chat
prompt ids, the same greedy answer; in GPT-2's layout and in the profiles' modern one."""

import os
import subprocess
import sys
from dataclasses import asdict
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from python_files.artifacts import REPO_ROOT
from python_files.chat import reply
from python_files.chat_format import render_prompt
from python_files.checkpoint import Checkpoints, save_checkpoint
from python_files.errors import CourseError
from python_files.export import export, push_to_hub
from python_files.model import GPT, GPT2_LAYOUT, GPTConfig
from python_files.profiles import MODERN_MODEL
from python_files.tokenizer import TextTokenizer
from tiny_course import tiny_artifacts

LOGIT_TOLERANCE = 1e-4     # float32, the same operations in another order
MODERN = {key: value for key, value in MODERN_MODEL.items() if key != "vocab_multiple"}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What does json.dumps do?"},
            {"role": "assistant", "content": "Serialize obj."}, {"role": "user", "content": "Tell me more."}]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return TextTokenizer.load(tiny_artifacts(tmp_path_factory.mktemp("export")).tokenizer)


def random_model(tokenizer, layout: dict) -> GPT:
    """A model with every weight random (biases and norm gains too, which start as 0 and 1),
    and an embedding padded past the vocabulary as the profiles pad it."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(tokenizer.vocab_size, context_length=128, n_layer=2, n_head=4, n_embd=32,
                          vocab_multiple=64, **layout))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    return model.eval()


@pytest.fixture(scope="module", params=["gpt2", "modern"])
def exported(request, tokenizer, tmp_path_factory):
    model = random_model(tokenizer, GPT2_LAYOUT if request.param == "gpt2" else MODERN)
    folder = export(model, tokenizer, tmp_path_factory.mktemp(request.param), "# card\n")
    return model, AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_transformers_gives_our_logits(exported):
    ours, theirs, _ = exported
    ids = torch.randint(0, ours.config.vocab_size, (2, 50), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, _ = ours(ids)
        logits = theirs(ids).logits
    assert logits.shape == expected.shape, "only the real vocabulary is exported"
    assert (logits - expected).abs().max().item() < LOGIT_TOLERANCE


def test_the_chat_template_renders_our_prompt(exported, tokenizer):
    hub_tokenizer = exported[2]
    ids = hub_tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert list(ids) == render_prompt(MESSAGES, tokenizer)


def test_a_pipeline_answers_as_our_chat_does(exported, tokenizer):
    ours, theirs, hub_tokenizer = exported
    generator = pipeline("text-generation", model=theirs, tokenizer=hub_tokenizer)
    prompt = hub_tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    answer = generator(prompt, max_new_tokens=12, do_sample=False, return_full_text=False)[0]["generated_text"]
    expected = reply(ours, tokenizer, MESSAGES, max_new_tokens=12)
    assert expected, "a random model that answers something: an empty answer would compare trivially"
    assert answer.strip() == expected


def test_a_layout_transformers_lacks_is_refused(tokenizer, tmp_path):
    model = random_model(tokenizer, {**MODERN, "qk_norm": True})
    with pytest.raises(CourseError, match="no architecture in transformers that computes the same"):
        export(model, tokenizer, tmp_path)
    assert not list(tmp_path.iterdir()), "nothing written"



def run_export(root, *arguments) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_PROFILE": "ci", "LLM_ARTIFACTS": str(root)}
    return subprocess.run([sys.executable, "-m", "python_files.export", *arguments], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def write_fine_tuned_checkpoint(tokenizer, tmp_path):
    artifacts = tiny_artifacts(tmp_path)
    model = random_model(tokenizer, MODERN)
    save_checkpoint(Checkpoints(artifacts.checkpoints("sft")).best,
                    {"model": model.state_dict(), "model_config": asdict(model.config),
                     "trained_on": {"tokenizer": tokenizer.sha256}})


def test_the_command_exports_the_fine_tuned_model_with_a_card(tokenizer, tmp_path):
    write_fine_tuned_checkpoint(tokenizer, tmp_path)
    result = run_export(tmp_path, str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "the fine-tuned (06) model, exported" in result.stdout
    card = (tmp_path / "out" / "README.md").read_text()
    assert "fine-tuned (06) model of the course" in card and "tokens (100.0% test)" in card
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.model_type == "llama"


def test_a_push_to_the_hub_that_fails_says_why_and_keeps_the_export(tokenizer, tmp_path, monkeypatch):
    write_fine_tuned_checkpoint(tokenizer, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run_export(tmp_path, str(tmp_path / "out"), "--push-to-hub", "someone/course-model")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Could not push to the hub repository 'someone/course-model'" in result.stderr
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.model_type == "llama"


def test_the_command_without_a_model_names_the_notebook(tmp_path):
    result = run_export(tmp_path, str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "01_tokenizer" in result.stderr


def test_a_push_to_the_hub_creates_the_repository_and_uploads_the_folder(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class RecordingHub:    # the hub's client, without the network: what would be sent
        def create_repo(self, repo_id, **settings):
            calls.append(("create", repo_id, settings))

        def upload_folder(self, **settings):
            calls.append(("upload", settings["repo_id"], settings["folder_path"]))
            return SimpleNamespace(commit_url=f"https://huggingface.co/{settings['repo_id']}/commit/1")

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHub)
    assert push_to_hub(tmp_path, "someone/course-model", private=True).endswith("someone/course-model/commit/1")
    assert calls == [("create", "someone/course-model", {"repo_type": "model", "private": True, "exist_ok": True}),
                     ("upload", "someone/course-model", tmp_path)]

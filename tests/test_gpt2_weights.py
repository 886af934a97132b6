"""GPT-2 weights into our GPT, checked against `transformers` on a small random GPT-2 saved with
`save_pretrained` (offline: nothing comes from the hub)."""

import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from python_files.errors import CourseError
from python_files.gpt2_weights import load_gpt2
from python_files.sampling import generate

LOGIT_TOLERANCE = 1e-4     # float32, the same operations in another order


@pytest.fixture(scope="module")
def random_gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    reference = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_layer=2, n_head=4, n_embd=64,
                                            bos_token_id=0, eos_token_id=0))
    reference.save_pretrained(folder)
    return folder, reference.eval()


def test_our_model_gives_gpt2_s_logits(random_gpt2):
    folder, reference = random_gpt2
    ours = load_gpt2(folder).eval()
    ids = torch.randint(0, 300, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(ids).logits
        logits, _ = ours(ids)
    assert logits.shape == expected.shape
    assert (logits - expected).abs().max().item() < LOGIT_TOLERANCE


def test_greedy_generation_writes_gpt2_s_tokens(random_gpt2):
    folder, reference = random_gpt2
    prompt = [5, 17, 42, 7]
    expected = reference.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False,
                                  pad_token_id=0)[0, len(prompt):].tolist()
    assert generate(load_gpt2(folder), prompt, 20, temperature=0) == expected


def test_a_folder_that_is_not_gpt2_gets_one_sentence(random_gpt2, tmp_path):
    with pytest.raises(CourseError, match="is not a GPT-2 checkpoint: .*missing: config.json, model.safetensors"):
        load_gpt2(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "model.safetensors").write_bytes((random_gpt2[0] / "model.safetensors").read_bytes())
    with pytest.raises(CourseError, match="model_type \"gpt2\""):
        load_gpt2(tmp_path)


def test_an_unreachable_hub_is_named(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CourseError, match="could not be fetched from the Hugging Face hub .*HF_HUB_OFFLINE"):
        load_gpt2("gpt2-this-id-is-not-cached")

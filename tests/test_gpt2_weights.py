"""GPT-2 weights into our GPT, checked against `transformers` on a small random GPT-2 saved with
`save_pretrained` (offline: nothing comes from the hub)."""

import json

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel

from python_files.artifacts import Artifacts
from python_files.checkpoint import Checkpoints, load_model, read_log
from python_files.errors import CourseError
from python_files.gpt2_weights import gpt2_chat_tokenizer, grow_vocabulary, load_gpt2, start_from_gpt2
from python_files.pretrain import pretrain
from python_files.profiles import PROFILES, with_settings
from python_files.sampling import generate
from python_files.sft import finetune
from python_files.world import world_questions
from python_files.sft_data import all_conversations, prepare_sft_data
from python_files.tokenizer import END_OF_TEXT, SPECIAL_TOKENS
from test_sft_data import DOCS

LOGIT_TOLERANCE = 1e-4     # float32, the same operations in another order


@pytest.fixture(scope="module")
def random_gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    reference = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_layer=2, n_head=4, n_embd=64,
                                            bos_token_id=0, eos_token_id=0))
    reference.save_pretrained(folder)
    gpt2_shaped_tokenizer(299).save(str(folder / "tokenizer.json"))
    return folder, reference.eval()


def gpt2_shaped_tokenizer(vocab_size: int) -> Tokenizer:
    """A byte-level BPE laid out like GPT-2's: merges first, <|endoftext|> as the last id."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    texts = [doc.text for doc in DOCS] * 3 + ["What does it do? I don't know."] * 3
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    assert tokenizer.get_vocab_size() == vocab_size, "the fixture text must have enough merges"
    tokenizer.add_special_tokens([END_OF_TEXT])
    return tokenizer


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


def test_gpt2_s_tokenizer_gets_the_chat_tokens_after_its_own_ids(random_gpt2):
    folder, _ = random_gpt2
    original = Tokenizer.from_file(str(folder / "tokenizer.json"))
    chat = gpt2_chat_tokenizer(folder, 300)
    assert chat.special_id(END_OF_TEXT) == 299 and chat.vocab_size == 300 + len(SPECIAL_TOKENS) - 1
    assert sorted(chat.special_id(t) for t in SPECIAL_TOKENS if t != END_OF_TEXT) == [300, 301, 302, 303]
    text = "What does json.dumps do? <|user|> stays text"
    assert chat.encode(text) == original.encode(text, add_special_tokens=False).ids
    with pytest.raises(CourseError, match="has 300 tokens but the model 320 embedding rows"):
        gpt2_chat_tokenizer(folder, 320)     # a padded checkpoint: the chat rows would land on padding


def test_grown_rows_start_at_the_mean_and_leave_gpt2_s_predictions_as_they_were(random_gpt2):
    folder, _ = random_gpt2
    model = load_gpt2(folder).eval()
    grown = grow_vocabulary(model, 304).eval()
    assert grown.wte.weight.shape[0] == 320 and grown.lm_head.weight is grown.wte.weight
    assert torch.equal(grown.wte.weight[:300], model.wte.weight)
    assert torch.allclose(grown.wte.weight[300:304], model.wte.weight.mean(dim=0).expand(4, -1))
    ids = torch.randint(0, 300, (2, 30), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before, after = model(ids)[0], grown(ids)[0]
    assert after.shape[-1] == 304
    assert (after[..., :300] - before).abs().max().item() < LOGIT_TOLERANCE
    # tied head without bias: a mean row's logit is the mean of the old logits, an unremarkable token
    new_logits = before.mean(dim=-1, keepdim=True).expand(-1, -1, 4)
    assert (after[..., 300:] - new_logits).abs().max().item() < LOGIT_TOLERANCE


def test_fine_tuning_runs_unchanged_on_gpt2(random_gpt2, tmp_path):
    """The `gpt2` profile's path on the small GPT-2: notebook 05's call, its files, stage 06."""
    folder, _ = random_gpt2
    artifacts = Artifacts(tmp_path, "artifacts/gpt2")
    tokenizer = start_from_gpt2(folder, artifacts)
    pretrained = Checkpoints(artifacts.checkpoints("pretrain")).best
    written = pretrained.stat().st_mtime_ns, artifacts.tokenizer.stat().st_mtime_ns
    assert start_from_gpt2(folder, artifacts).sha256 == tokenizer.sha256
    assert (pretrained.stat().st_mtime_ns, artifacts.tokenizer.stat().st_mtime_ns) == written, \
        "a second call writes nothing: fine-tuning can resume"
    questions = world_questions(DOCS, seed=0)
    prepare_sft_data(all_conversations(questions, 0)[0], questions, tokenizer, artifacts, 64)
    profile = with_settings(PROFILES["gpt2"], {
        "model.context_length": 64, "sft.batch_size": 4, "sft.grad_accum_steps": 1, "sft.max_steps": 6, "sft.warmup_steps": 1,
        "sft.learning_rate": 1e-3, "sft.eval_interval": 2, "sft.eval_batches": 2,
        "start_from": str(folder)})
    result = finetune(profile, artifacts, progress=False)
    evaluations = [r["val_loss"] for r in read_log(Checkpoints(artifacts.checkpoints("sft")).log) if "val_loss" in r]
    assert result.step == 6 and evaluations[-1] < evaluations[0], "it learns the chat format"
    fine_tuned = load_model(Checkpoints(artifacts.checkpoints("sft")).best, "cpu", tokenizer.sha256)
    assert fine_tuned.config.n_layer == 2 and fine_tuned.config.vocab_size == tokenizer.vocab_size


def test_pretraining_under_a_profile_that_starts_from_gpt2_names_the_first_notebook(tmp_path):
    with pytest.raises(CourseError, match="starts from OpenAI's gpt2 .* begin with notebook 05_sft_data"):
        pretrain(PROFILES["gpt2"], Artifacts(tmp_path, "artifacts/gpt2"))

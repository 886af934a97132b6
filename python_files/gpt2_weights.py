"""OpenAI's GPT-2 in our `GPT`: the weights of a Hugging Face GPT-2 checkpoint, mapped by name.

`GPTConfig` with `GPT2_LAYOUT` is GPT-2's architecture (learned positions, pre-norm LayerNorm,
tanh GELU, biases, an output head tied to the token embedding), so the weights only need new
names, and one change of shape: Hugging Face keeps GPT-2's attention and MLP matrices as OpenAI
wrote them, `Conv1D` weights of shape (in, out), where `nn.Linear` holds (out, in).

    model = load_gpt2("gpt2")                  # from the hub (cached), or a local folder

A checkpoint is a folder (or hub id) with GPT-2's `config.json` and `model.safetensors`.

`start_from_gpt2` puts GPT-2 where stages 01 to 04 put the course's own tokenizer and
pretrained model, with the course's chat tokens added, so that fine-tuning (05, 06), reinforcement
(06b) and the chat (07) run unchanged on it: the `gpt2` profile does that.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .artifacts import Artifacts, atomic_write_text
from .checkpoint import Checkpoints, load_checkpoint, save_checkpoint
from .errors import CourseError, library_reason
from .model import GPT, GPT2_LAYOUT, GPTConfig
from .tokenizer import SPECIAL_TOKENS, TextTokenizer

GPT2_FILES = ("config.json", "model.safetensors")
GPT2_TOKENIZER = "tokenizer.json"
# Conv1D weights, stored (in, out): transposed into nn.Linear's (out, in)
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# GPT-2's names of a block's layers -> ours
BLOCK_NAMES = {"ln_1": "ln1", "ln_2": "ln2", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj",
               "mlp.c_fc": "mlp.fc", "mlp.c_proj": "mlp.proj"}


def gpt2_folder(name_or_folder: str | Path) -> Path:
    """A local folder as it is; a hub id ("gpt2", "gpt2-medium", ...) downloaded once and cached."""
    if Path(name_or_folder).is_dir():
        return Path(name_or_folder)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(name_or_folder), allow_patterns=[*GPT2_FILES, GPT2_TOKENIZER]))
    except Exception as error:   # offline, unknown id, no network: the hub raises many kinds
        raise CourseError(f"GPT-2 {str(name_or_folder)!r} could not be fetched from the Hugging Face hub "
                          f"({library_reason(error)}; HF_HUB_OFFLINE=1 also stops it): check the name and "
                          f"the connection, or give a local folder with {' and '.join(GPT2_FILES)}.") from None


def gpt2_config(folder: Path) -> GPTConfig:
    """Our config for the GPT-2 in `folder`, from its config.json."""
    missing = [name for name in GPT2_FILES if not (folder / name).exists()]
    hub_config = json.loads((folder / "config.json").read_text(encoding="utf-8")) if not missing else {}
    if missing or hub_config.get("model_type") != "gpt2":
        raise CourseError(f"{folder.name}/ is not a GPT-2 checkpoint: it needs {' and '.join(GPT2_FILES)} "
                          f"with model_type \"gpt2\" (missing: {', '.join(missing) or 'none'}).")
    return GPTConfig(vocab_size=hub_config["vocab_size"], context_length=hub_config["n_positions"],
                     n_layer=hub_config["n_layer"], n_head=hub_config["n_head"],
                     n_embd=hub_config["n_embd"], **GPT2_LAYOUT)


def our_names(hub_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GPT-2's state dict under our names and shapes. The causal-mask buffers some checkpoints
    store are left out (ours is built on the fly), and the head is the token embedding."""
    state = {}
    for name, tensor in hub_state.items():
        name = name.removeprefix("transformer.")    # GPT2LMHeadModel's prefix; OpenAI's files have none
        if name.endswith((".attn.bias", ".attn.masked_bias")) or name == "lm_head.weight":
            continue
        if name.endswith(CONV1D_WEIGHTS):
            tensor = tensor.t()
        if name.startswith("h."):           # h.3.attn.c_attn.weight -> blocks.3.attn.qkv.weight
            layer, rest = name[2:].split(".", 1)
            layer_name, _, parameter = rest.rpartition(".")
            name = f"blocks.{layer}.{BLOCK_NAMES.get(layer_name, layer_name)}.{parameter}"
        state[name] = tensor.contiguous()
    state["lm_head.weight"] = state["wte.weight"]
    return state


def load_gpt2(name_or_folder: str | Path = "gpt2", device: torch.device | str = "cpu") -> GPT:
    """Our GPT with the weights of a Hugging Face GPT-2 checkpoint (hub id or local folder)."""
    from safetensors.torch import load_file

    folder = gpt2_folder(name_or_folder)
    model = GPT(gpt2_config(folder))
    try:
        model.load_state_dict(our_names(load_file(folder / "model.safetensors")))
    except RuntimeError as error:    # names or shapes that are not GPT-2's
        raise CourseError(f"{folder.name}/model.safetensors does not hold the weights its config.json "
                          f"describes ({str(error).splitlines()[0]}).") from None
    return model.to(device)


# --- GPT-2 as the start of fine-tuning -------------------------------------------------------

def gpt2_chat_tokenizer(folder: Path, model_vocab_size: int) -> TextTokenizer:
    """GPT-2's tokenizer with the course's chat tokens added after its ids (its own
    <|endoftext|> is the course's too, and keeps its id)."""
    from tokenizers import AddedToken, Tokenizer

    if not (folder / GPT2_TOKENIZER).exists():
        raise CourseError(f"{folder.name}/ has no {GPT2_TOKENIZER}: GPT-2's tokenizer is needed to "
                          f"fine-tune it (the hub's gpt2 checkpoints have one).")
    backend = Tokenizer.from_file(str(folder / GPT2_TOKENIZER))
    if backend.get_vocab_size() != model_vocab_size:   # new rows must follow the model's own
        raise CourseError(f"{folder.name}/{GPT2_TOKENIZER} has {backend.get_vocab_size():,} tokens but the "
                          f"model {model_vocab_size:,} embedding rows: use the tokenizer saved with "
                          f"this checkpoint.")
    backend.add_special_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS])
    return TextTokenizer.from_json(backend.to_str(), f"{folder.name}/{GPT2_TOKENIZER}")


def grow_vocabulary(model: GPT, vocab_size: int, vocab_multiple: int = 64) -> GPT:
    """`model` with embedding rows for new token ids, each the mean of the existing rows.

    The output head is the embedding (tied), so a new token's logit is the hidden state times its
    row. A random row would give the new tokens arbitrary logits; the mean row gives each about
    the average logit, so nothing the model predicted before changes much, and fine-tuning moves
    the new rows from a neutral start (Hewitt, "Initializing New Word Embeddings", 2021).
    """
    old_rows = model.config.vocab_size
    grown = GPT(replace(model.config, vocab_size=vocab_size, vocab_multiple=vocab_multiple))
    state = model.state_dict()
    embedding = grown.wte.weight.detach().clone()
    embedding[:old_rows] = state["wte.weight"][:old_rows]
    embedding[old_rows:] = state["wte.weight"][:old_rows].mean(dim=0)
    state["wte.weight"] = state["lm_head.weight"] = embedding
    grown.load_state_dict(state)
    return grown


def start_from_gpt2(name_or_folder: str | Path, artifacts: Artifacts, vocab_multiple: int = 64) -> TextTokenizer:
    """Write GPT-2's tokenizer (chat tokens added) to tokenizer/ and its weights (rows for those
    tokens added) as the best pretraining checkpoint: what stages 01 and 04 would have written.
    Done once: a second call finds both and changes nothing, so fine-tuning can resume."""
    pretrained = Checkpoints(artifacts.checkpoints("pretrain")).best
    if pretrained.exists() and artifacts.tokenizer.exists():
        tokenizer = TextTokenizer.load(artifacts.tokenizer)
        trained_on = load_checkpoint(pretrained).get("trained_on", {})
        if trained_on.get("gpt2") == str(name_or_folder) and trained_on.get("tokenizer") == tokenizer.sha256:
            return tokenizer
    folder = gpt2_folder(name_or_folder)
    gpt2 = load_gpt2(folder)
    tokenizer = gpt2_chat_tokenizer(folder, gpt2.config.vocab_size)
    model = grow_vocabulary(gpt2, tokenizer.vocab_size, vocab_multiple)
    artifacts.tokenizer_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(artifacts.tokenizer, tokenizer.to_json())
    save_checkpoint(pretrained, {"model": model.state_dict(), "model_config": asdict(model.config),
                                 "trained_on": {"tokenizer": tokenizer.sha256, "gpt2": str(name_or_folder)}})
    return tokenizer

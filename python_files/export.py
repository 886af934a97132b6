"""Our model out to Hugging Face `transformers`: a folder that `from_pretrained` loads with no
custom code.

    python -m python_files.export OUTPUT_FOLDER [--checkpoint latest|sft|reinforce|pretrain|PATH]
                                                [--push-to-hub USER/NAME [--private]]

then, anywhere `transformers` is installed::

    model = AutoModelForCausalLM.from_pretrained(OUTPUT_FOLDER)
    tokenizer = AutoTokenizer.from_pretrained(OUTPUT_FOLDER)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)

The architecture `transformers` gets depends on the model's layout:

- GPT-2's own layout (`model.GPT2_LAYOUT`) becomes a `GPT2LMHeadModel`: the names of
  gpt2_weights.py, the other way round, and the matrices transposed back into `Conv1D`'s shape;
- the modern layout of the profiles (rotary positions, RMSNorm, a ReLU² or GELU MLP) becomes a
  `LlamaForCausalLM`, which has rotary positions (the same halves convention as ours) and
  RMSNorm. Llama's MLP is gated, down(act(gate(x)) * up(x)); ours is down(act(fc(x))): so
  gate = fc, and up is a layer of zero weights and bias 1, which multiplies by exactly 1.

Other layouts (QK-norm, logit soft-capping, learned positions with RMSNorm, ...) have no
architecture in `transformers` that computes exactly what ours does: they are refused.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import torch

from .artifacts import Artifacts, atomic_path, atomic_write_text
from .checkpoint import load_model
from .errors import CourseError, library_reason, sentence_on_error
from .gpt2_weights import BLOCK_NAMES, CONV1D_WEIGHTS
from .model import GPT, GPT2_LAYOUT
from .pretrain_data import read_pretrain_meta, training_mixture
from .tokenizer import ASSISTANT, END_OF_TEXT, END_OF_TURN, SPECIAL_TOKENS, SYSTEM, USER, TextTokenizer

# renders a conversation as chat_format.render_prompt does: role token, content, end token, and (with
# add_generation_prompt) the assistant's role token, which asks the model for an answer
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ {'system': '" + SYSTEM + "', 'user': '" + USER + "', 'assistant': '" + ASSISTANT + "'}[message['role']] }}"
    "{{ message['content'] }}" + END_OF_TURN +
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}")
# What export does with each field of GPTConfig. It decides from all of them: a field that is in
# none of these (a new architecture switch, say) stops the export with a sentence, rather than
# being exported as if it were not there.
SIZES = ("vocab_size", "context_length", "n_layer", "n_head", "n_embd")   # written into config.json
# fields that do not change what a trained model computes: dropout is off when it runs, the
# padded vocabulary rows are cut (`real_vocabulary`), fused attention is the same maths, and
# zero_init only says how the weights started
NOT_COMPUTED = ("dropout", "vocab_multiple", "fused_attention", "zero_init")
# the layout fields, and the values each architecture of transformers computes exactly
LAYOUTS = {
    "gpt2": {key: (value,) for key, value in GPT2_LAYOUT.items() if key not in NOT_COMPUTED},
    "llama": {"positions": ("rope",), "norm": ("rmsnorm",), "mlp": ("gelu", "relu2"), "qk_norm": (False,),
              "tied_head": (True,), "logit_softcap": (None,)},
}
HIDDEN_ACTIVATIONS = {"gelu": "gelu_pytorch_tanh", "relu2": "relu2"}


def exported_architecture(model: GPT) -> str:
    """"gpt2" or "llama", or one sentence saying why this model has no exact equivalent."""
    config = model.config
    known = {*SIZES, *NOT_COMPUTED, *(key for layout in LAYOUTS.values() for key in layout)}
    unknown = [field.name for field in fields(config) if field.name not in known]
    if unknown:
        raise CourseError(f"Export does not know the model setting {', '.join(unknown)}: it cannot tell "
                          f"whether transformers would compute the same, so it exports nothing. Map the "
                          f"setting in export.py (SIZES, NOT_COMPUTED or LAYOUTS) first.")
    for architecture, layout in LAYOUTS.items():
        if all(getattr(config, key) in values for key, values in layout.items()):
            return architecture
    raise CourseError("This model's layout has no architecture in transformers that computes the same: "
                      "export supports GPT-2's layout and rotary positions with RMSNorm, without QK-norm, "
                      "soft-capping or an untied head.")


def real_vocabulary(state: dict, vocab_size: int) -> dict:
    """The embedding without the rows padded for tensor cores: transformers would predict them."""
    return {**state, "wte.weight": state["wte.weight"][:vocab_size]}


def gpt2_state(state: dict) -> dict:
    """Our state dict under GPT2LMHeadModel's names, matrices transposed into Conv1D's shape."""
    theirs_by_ours = {ours: theirs for theirs, ours in BLOCK_NAMES.items()}
    exported = {}
    for name, tensor in state.items():
        if name.startswith("blocks."):
            _, layer, rest = name.split(".", 2)
            layer_name, _, parameter = rest.rpartition(".")
            name = f"h.{layer}.{theirs_by_ours[layer_name]}.{parameter}"
        if name.endswith(CONV1D_WEIGHTS):
            tensor = tensor.t()
        if name != "lm_head.weight":
            exported[f"transformer.{name}"] = tensor.contiguous()
    return exported


def llama_state(state: dict, n_layer: int) -> dict:
    """Our state dict under LlamaForCausalLM's names (see the module's docstring)."""
    exported = {"model.embed_tokens.weight": state["wte.weight"], "model.norm.weight": state["ln_f.weight"]}
    for layer in range(n_layer):
        ours, theirs = f"blocks.{layer}.", f"model.layers.{layer}."
        for kind in ("weight", "bias"):
            for projection, part in zip(("q_proj", "k_proj", "v_proj"), state[f"{ours}attn.qkv.{kind}"].chunk(3)):
                exported[f"{theirs}self_attn.{projection}.{kind}"] = part
            exported[f"{theirs}self_attn.o_proj.{kind}"] = state[f"{ours}attn.proj.{kind}"]
            exported[f"{theirs}mlp.gate_proj.{kind}"] = state[f"{ours}mlp.fc.{kind}"]
            exported[f"{theirs}mlp.down_proj.{kind}"] = state[f"{ours}mlp.proj.{kind}"]
        fc = state[f"{ours}mlp.fc.weight"]
        exported[f"{theirs}mlp.up_proj.weight"] = torch.zeros_like(fc)
        exported[f"{theirs}mlp.up_proj.bias"] = torch.ones(fc.size(0), dtype=fc.dtype)
        exported[f"{theirs}input_layernorm.weight"] = state[f"{ours}ln1.weight"]
        exported[f"{theirs}post_attention_layernorm.weight"] = state[f"{ours}ln2.weight"]
    return {name: tensor.contiguous() for name, tensor in exported.items()}


def hub_config(model: GPT, architecture: str, tokenizer: TextTokenizer) -> dict:
    config = model.config
    shared = {"vocab_size": tokenizer.vocab_size, "tie_word_embeddings": True, "torch_dtype": "float32",
              "bos_token_id": tokenizer.special_id(END_OF_TEXT), "eos_token_id": tokenizer.special_id(END_OF_TURN)}
    if architecture == "gpt2":
        return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_positions": config.context_length,
                "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head,
                "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, **shared}
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
            "max_position_embeddings": config.context_length, "hidden_size": config.n_embd,
            "intermediate_size": 4 * config.n_embd, "num_hidden_layers": config.n_layer,
            "num_attention_heads": config.n_head, "num_key_value_heads": config.n_head,
            "hidden_act": HIDDEN_ACTIVATIONS[config.mlp], "attention_bias": True, "mlp_bias": True,
            # nn.RMSNorm() without eps uses the float32 machine epsilon
            "rms_norm_eps": torch.finfo(torch.float32).eps,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10_000.0}, **shared}


def tokenizer_config() -> dict:
    return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": END_OF_TEXT, "eos_token": END_OF_TURN,
            "pad_token": END_OF_TEXT, "additional_special_tokens": [SYSTEM, USER, ASSISTANT],
            "chat_template": CHAT_TEMPLATE, "model_max_length": None}


def export(model: GPT, tokenizer: TextTokenizer, folder: Path, model_card: str = "") -> Path:
    """Write `model` and `tokenizer` into `folder` in the format of Hugging Face `transformers`."""
    from safetensors.torch import save_file

    architecture = exported_architecture(model)
    check_folder(folder)
    state = real_vocabulary({name: t.detach().cpu() for name, t in model.state_dict().items()},
                            tokenizer.vocab_size)
    weights = gpt2_state(state) if architecture == "gpt2" else llama_state(state, model.config.n_layer)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.safetensors") as temporary:   # a full disk leaves no half file
        save_file(weights, temporary, metadata={"format": "pt"})
    config = hub_config(model, architecture, tokenizer)
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2))
    atomic_write_text(folder / "tokenizer.json", tokenizer.to_json())
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(tokenizer_config(), indent=2))
    atomic_write_text(folder / "special_tokens_map.json", json.dumps(
        {"bos_token": END_OF_TEXT, "eos_token": END_OF_TURN, "pad_token": END_OF_TEXT,
         "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in (END_OF_TEXT, END_OF_TURN)]}, indent=2))
    if model_card:
        atomic_write_text(folder / "README.md", model_card)
    return folder


def check_folder(folder: Path) -> None:
    """One sentence when `folder` is, or lies under, a file: an export is written into a folder."""
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            where = "is" if part == folder else f"lies under {part.name}, which is"
            raise CourseError(f"Cannot export into {folder.as_posix()}: it {where} a file, not a folder. "
                              f"Name a new folder (it is made) or an existing one.")


def model_card(description: str, model: GPT, artifacts: Artifacts, start_from: str | None = None) -> str:
    """A short README for the export: what the model is, what it learned from, how it scored.
    `start_from`: the GPT-2 checkpoint it was fine-tuned from (the `gpt2` profile)."""
    title = f"A chat model fine-tuned from OpenAI's {start_from}" if start_from else "A small chat model built from scratch"
    lines = [f"# {title}\n",
             f"The {description} model of the course: {model.num_parameters() / 1e6:.2f}M parameters, "
             f"{model.config.n_layer} layers x {model.config.n_embd} wide, context {model.config.context_length}.\n"]
    if start_from:
        lines.append(f"Pretrained by OpenAI ({start_from}, WebText; MIT license), not by the course.\n")
    if artifacts.pretrain_meta.exists():
        corpus = read_pretrain_meta(artifacts)
        lines.append(f"Pretrained on `{corpus['corpus']}`: {corpus['splits']['train']['tokens']:,} tokens "
                     f"({', '.join(training_mixture(corpus))}).\n")
    if artifacts.sft_meta.exists():
        mixture = json.loads(artifacts.sft_meta.read_text(encoding="utf-8"))["mixture"]
        lines.append("Fine-tuned on:\n\n| source | conversations | license |\n|---|---|---|")
        lines += [f"| {name} | {row['train_conversations']:,} | {row['license']} |" for name, row in mixture.items()]
        lines.append("")
    if artifacts.eval_results.exists():
        table = json.loads(artifacts.eval_results.read_text(encoding="utf-8"))["table"]
        lines.append("Held-out questions (notebook 07): " + "; ".join(
            f"{kind}: {row['correct']:.0%} correct of {row['questions']}" for kind, row in table.items()) + ".\n")
    lines.append("Chat format: `tokenizer.apply_chat_template(messages, add_generation_prompt=True)`; "
                 "an answer ends with `<|end|>`.\n")
    return "\n".join(lines)


def push_to_hub(folder: Path, repo_id: str, private: bool = False) -> str:
    """Upload an exported folder to a model repository on the Hugging Face hub, created if it
    does not exist yet; returns the address of the commit. Needs a login with write access."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model",
                                   commit_message="Upload a model built with the course")
    except Exception as error:  # offline, not logged in, no write access, a malformed name, ...
        raise CourseError(f"Could not push to the hub repository {repo_id!r} ({library_reason(error)}): "
                          f"log in with `hf auth login` using a token with write access, check the "
                          f"name (USER/NAME) and that HF_HUB_OFFLINE is unset; the export in "
                          f"{folder} is complete.") from None
    return commit.commit_url


@sentence_on_error
def main(argv: list[str] | None = None) -> None:
    from .chat import checkpoint_path
    from .profiles import active_profile

    parser = argparse.ArgumentParser(description="Export the course's model for Hugging Face transformers.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--checkpoint", default="latest",
                        help="latest (default), sft, reinforce, pretrain, the path of a .pt file, or a "
                             "run's folder (its best.pt)")
    parser.add_argument("--push-to-hub", metavar="USER/NAME",
                        help="also upload the folder to this model repository on the hub")
    parser.add_argument("--private", action="store_true", help="create the hub repository private")
    args = parser.parse_args(argv)
    profile = active_profile()
    if args.private and not args.push_to_hub:
        parser.error("--private only applies with --push-to-hub.")
    artifacts = Artifacts.for_profile(profile.name)
    tokenizer = TextTokenizer.load(artifacts.require(artifacts.tokenizer, "01_tokenizer"))
    path, description = checkpoint_path(artifacts, args.checkpoint)
    model = load_model(path, "cpu", tokenizer.sha256)
    export(model, tokenizer, args.folder, model_card(description, model, artifacts, profile.start_from))
    print(f"the {description} model, exported to {args.folder}: load it with "
          f"AutoModelForCausalLM.from_pretrained and AutoTokenizer.from_pretrained")
    if args.push_to_hub:
        print("pushed:", push_to_hub(args.folder, args.push_to_hub, args.private))


if __name__ == "__main__":
    main()

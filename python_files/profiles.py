"""Profiles: one setting, `LLM_PROFILE`, picks every size in the course.

- ``ci``: the tests, on 2 CPU cores, in a few minutes; the embedded corpus.
- ``cpu``: a laptop, about 30 minutes for all notebooks; the embedded corpus.
- ``colab``: a free Colab T4 (fp16), 1-2 hours; hub datasets.
- ``gpu``: A100/H100s, also several through torchrun; a ~124M-parameter model.
- ``gpt2``: no pretraining of our own: OpenAI's GPT-2 (124M) fine-tuned into a chat model on a
  GPU, from notebook 05 on (see `start_from`).

When `LLM_PROFILE` is unset, a machine with CUDA gets ``colab`` and any other gets ``cpu``;
``gpu`` is only used when asked for. `LLM_CORPUS` replaces the profile's corpus (for example
``LLM_CORPUS=data.txt`` to train on your own text), and `LLM_SETTINGS` any other setting
(``LLM_SETTINGS="max_steps=1500 docs_copies=6"``), so that an experiment needs no edit.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, fields, replace

from .corpus import PYTHON_DOCS
from .errors import CourseError

FINEWEB_EDU = "hf:fineweb-edu"     # corpus.HUB_CORPORA: the sample-10BT subset, streamed


@dataclass(frozen=True)
class MixtureSource:
    """A hub instruction set in the SFT mixture (see sft_sources.HUB_SOURCES)."""
    name: str
    cap: int                # at most this many conversations are read
    weight: float = 1.0     # each conversation is seen this many times per pass (2.0: twice)


@dataclass(frozen=True)
class Profile:
    name: str
    # data
    corpus: str                     # see corpus.load_corpus: python-docs, files, or hf:<id>
    corpus_max_bytes: int | None    # text stage 02 reads, ~4 bytes a token (None: all of it)
    val_fraction: float             # share of documents held out for validation
    # tokenizer
    vocab_size: int                 # of the production tokenizer, special tokens included
    bpe_train_bytes: int            # text given to the from-scratch trainer in notebook 01
    tokenizer_train_bytes: int      # text notebook 01 reads, 9/10 of it for the `tokenizers` trainer
    # model
    n_layer: int
    n_head: int
    n_embd: int
    context_length: int
    # pretraining
    batch_size: int                 # sequences per forward pass on one device
    grad_accum_steps: int           # forward passes per optimizer step
    max_steps: int
    learning_rate: float
    warmup_steps: int
    eval_interval: int              # steps between evaluations and checkpoints
    eval_batches: int               # validation batches per evaluation
    # supervised fine-tuning
    sft_steps: int
    sft_learning_rate: float
    sft_mixture: tuple[MixtureSource, ...] = ()   # hub instruction sets added to the docs questions
    # reinforcement by sampling (see reinforce.py): each batch samples rl_samples answers to
    # each of rl_questions_per_batch fine-tuning questions (grad_accum_steps batches a step)
    rl_steps: int = 0
    rl_learning_rate: float = 1e-5
    rl_questions_per_batch: int = 8
    rl_samples: int = 8
    rl_method: str = "grpo"         # or "rejection"
    # Each training document of the Python documentation is written this many times: notebook
    # 07 asks about it, and a few readings are needed to learn a docstring (beyond ~8, repeats
    # teach less than new text). A corpus without it (FineWeb-Edu, your files) gets it added;
    # python-docs+packages holds it already, and the copies weigh it against the packages'.
    # 0: not added. LLM_CORPUS=python-docs sets it to 0 (copies of everything are just more steps).
    docs_copies: int = 0
    # True: during the learning rate's final decay (schedule "wsd"), pretraining reads only the
    # documentation's repeats (docs_copies of 2 or more, in a corpus that is not the documentation
    # alone). The model learns from all the text while the rate is high, then ends on the text
    # notebook 07 asks about ("annealing" on it).
    anneal_on_docs: bool = False
    # None: fine-tuning starts from the model of notebook 04. A GPT-2 checkpoint (hub id such as
    # "gpt2" or "gpt2-medium", or a folder): notebook 05 puts its tokenizer and weights where
    # notebooks 01 and 04 put ours (gpt2_weights.start_from_gpt2), and 05-07 run on them.
    start_from: str | None = None
    tokenize_workers: int | None = None   # processes for tokenizing (None: all cores)
    sample_prompt: str = "json.dumps("    # shown completed during pretraining
    # speed (see train.py); each is on by default where the device supports it
    precision: str = "auto"         # auto: bf16 from sm80, fp16 with loss scaling below, fp32 on CPU
    compile: bool | None = None     # torch.compile; None: on with CUDA, except on Windows
    vocab_multiple: int = 64        # embedding rows rounded up to a multiple of this
    # architecture and optimizer: GPT-2's by default; see model.py and benchmarks/ablations.py
    positions: str = "learned"
    norm: str = "layernorm"
    mlp: str = "gelu"
    qk_norm: bool = False
    tied_head: bool = True
    logit_softcap: float | None = None
    optimizer: str = "adamw"
    schedule: str = "cosine"

    def summary(self) -> str:
        """The profile in one line: what a notebook prints first (print(profile) shows every setting)."""
        if self.start_from:
            return (f"profile {self.name}: OpenAI's {self.start_from} fine-tuned (no pretraining of ours), "
                    f"vocabulary {self.vocab_size:,}, windows of {self.context_length}, "
                    f"{self.sft_steps:,} fine-tuning steps")
        corpus = self.corpus if self.corpus_max_bytes is None else f"{self.corpus} ({self.corpus_max_bytes / 1e6:g} MB)"
        return (f"profile {self.name}: corpus {corpus}, vocabulary {self.vocab_size:,}, "
                f"{self.n_layer} layers x {self.n_embd} wide, {self.n_head} heads, context "
                f"{self.context_length}, {self.max_steps:,} pretraining + {self.sft_steps:,} fine-tuning steps")

    def __str__(self) -> str:
        width = max(len(f.name) for f in fields(self))
        return "\n".join(f"{f.name:<{width}}  {getattr(self, f.name)}" for f in fields(self))


# The choices since GPT-2 that won in benchmarks/ablations.py (the cpu model, same training
# time): rotary positions, RMSNorm, ReLU^2, Muon, warmup-stable-decay. QK-norm, an untied
# head and logit soft-capping did not help at this size, and stay off.
MEASURED_WINNERS = {"positions": "rope", "norm": "rmsnorm", "mlp": "relu2", "optimizer": "muon",
                    "schedule": "wsd"}

# small, clean sets weigh more; large synthetic ones are capped
COLAB_MIXTURE = (
    MixtureSource("smoltalk", 2_500, weight=2.0), MixtureSource("no_robots", 9_500),
    MixtureSource("oasst", 5_000), MixtureSource("dolly", 5_000), MixtureSource("alpaca", 10_000),
    MixtureSource("gsm8k", 7_500), MixtureSource("smol_smoltalk", 10_000),
    MixtureSource("lima", 1_000, weight=2.0), MixtureSource("slimorca", 5_000),
    MixtureSource("ultrachat", 10_000))
GPU_MIXTURE = tuple(MixtureSource(m.name, m.cap * 5, m.weight) for m in COLAB_MIXTURE)

PROFILES = {
    "ci": Profile(
        name="ci", corpus="python-docs", corpus_max_bytes=300_000, val_fraction=0.1,
        vocab_size=1024, bpe_train_bytes=150_000, tokenizer_train_bytes=300_000,
        n_layer=2, n_head=2, n_embd=64, context_length=128,
        batch_size=16, grad_accum_steps=1, max_steps=150, learning_rate=1e-2, warmup_steps=10,
        eval_interval=50, eval_batches=4, sft_steps=60, sft_learning_rate=1e-3,
        rl_steps=4, rl_learning_rate=1e-4, rl_questions_per_batch=2, rl_samples=4,
        tokenize_workers=2, **MEASURED_WINNERS),
    "cpu": Profile(
        name="cpu", corpus="python-docs", corpus_max_bytes=None, val_fraction=0.05,
        vocab_size=4096, bpe_train_bytes=2_000_000, tokenizer_train_bytes=10_000_000,
        n_layer=4, n_head=4, n_embd=192, context_length=256,
        batch_size=16, grad_accum_steps=1, max_steps=800, learning_rate=4e-3, warmup_steps=50,
        eval_interval=100, eval_batches=10, sft_steps=500, sft_learning_rate=5e-4,
        rl_steps=240, rl_learning_rate=5e-5, rl_questions_per_batch=8, rl_samples=8,
        **MEASURED_WINNERS),
    "colab": Profile(
        name="colab", corpus=FINEWEB_EDU, corpus_max_bytes=1_000_000_000, val_fraction=0.005,
        vocab_size=16384, bpe_train_bytes=5_000_000, tokenizer_train_bytes=200_000_000,
        n_layer=8, n_head=8, n_embd=512, context_length=512,
        batch_size=32, grad_accum_steps=4, max_steps=5000, learning_rate=6e-4, warmup_steps=200,
        eval_interval=250, eval_batches=50, sft_steps=2000, sft_learning_rate=2e-4,
        sft_mixture=COLAB_MIXTURE, docs_copies=8, rl_steps=200, rl_learning_rate=2e-5, rl_questions_per_batch=4,
        sample_prompt="The most important thing about", **MEASURED_WINNERS),
    "gpu": Profile(
        name="gpu", corpus=FINEWEB_EDU, corpus_max_bytes=20_000_000_000, val_fraction=0.001,
        vocab_size=32768, bpe_train_bytes=5_000_000, tokenizer_train_bytes=1_000_000_000,
        n_layer=12, n_head=12, n_embd=768, context_length=1024,
        batch_size=32, grad_accum_steps=16, max_steps=10000, learning_rate=6e-4,
        warmup_steps=700, eval_interval=500, eval_batches=100, sft_steps=3000,
        sft_learning_rate=1e-4, sft_mixture=GPU_MIXTURE, docs_copies=8, rl_steps=400, rl_learning_rate=1e-5,
        rl_questions_per_batch=2, sample_prompt="The most important thing about", **MEASURED_WINNERS),
    # GPT-2's tokenizer (50,257 ids) with the 4 chat tokens; the model's sizes are GPT-2's, from
    # its config.json; the pretraining settings are never used
    "gpt2": Profile(
        name="gpt2", corpus="python-docs", corpus_max_bytes=None, val_fraction=0.05,
        vocab_size=50_261, bpe_train_bytes=0, tokenizer_train_bytes=0,
        n_layer=12, n_head=12, n_embd=768, context_length=512,
        batch_size=16, grad_accum_steps=4, max_steps=0, learning_rate=0.0, warmup_steps=0,
        eval_interval=100, eval_batches=20, sft_steps=1000, sft_learning_rate=5e-5,
        sft_mixture=COLAB_MIXTURE, rl_steps=200, rl_learning_rate=1e-5, rl_questions_per_batch=4,
        start_from="gpt2"),
}


def default_profile_name() -> str:
    import torch

    return "colab" if torch.cuda.is_available() else "cpu"


def active_profile() -> Profile:
    """The profile named by `LLM_PROFILE` (or chosen for this machine), with `LLM_CORPUS` and
    `LLM_SETTINGS` applied."""
    name = os.environ.get("LLM_PROFILE") or default_profile_name()
    if name not in PROFILES:
        raise CourseError(f"LLM_PROFILE={name!r} is not a profile: use one of "
                          f"{', '.join(PROFILES)}.")
    profile = PROFILES[name]
    corpus = os.environ.get("LLM_CORPUS")
    if corpus:
        if corpus == PYTHON_DOCS:   # the documentation alone: nothing to weigh it against
            profile = replace(profile, docs_copies=0, anneal_on_docs=False)
        profile = replace(profile, corpus=corpus)
    return replace(profile, **parse_settings(os.environ.get("LLM_SETTINGS", "")))


# set by their own variables (LLM_PROFILE names the profile and its artifacts folder; LLM_CORPUS
# also decides whether the documentation is added), or too structured for one word
NOT_IN_SETTINGS = {"name": "LLM_PROFILE", "corpus": "LLM_CORPUS", "sft_mixture": "profiles.py"}


def parse_settings(text: str) -> dict[str, object]:
    """``"max_steps=1500 docs_copies=6"`` (spaces or commas between) as profile fields and values."""
    types = {f.name: str(f.type) for f in fields(Profile)}
    settings = {}
    for item in text.replace(",", " ").split():
        name, equals, value_text = item.partition("=")
        if not equals or not value_text:
            raise CourseError(f"LLM_SETTINGS: {item!r} is not NAME=VALUE (no spaces or commas inside "
                              f"a value): write for example max_steps=1500.")
        if name in NOT_IN_SETTINGS:
            raise CourseError(f"LLM_SETTINGS: {name} cannot be set there: use {NOT_IN_SETTINGS[name]}.")
        if name not in types:
            raise CourseError(f"LLM_SETTINGS: {name!r} is not a setting of the profile: "
                              f"print(profile) lists them.")
        settings[name] = setting_value(name, value_text, types[name])
    return settings


def setting_value(name: str, text: str, annotation: str) -> object:
    """`text` as a value of the type `annotation` names: 1500, 4e-3, rope, True, None."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text                         # a bare word: a string such as rope or muon
    allowed = {type_name.strip() for type_name in annotation.replace("None", "NoneType").split("|")}
    if type(value) is int and "float" in allowed:
        value = float(value)
    if type(value).__name__ not in allowed:
        hint = {"bool": " (True or False)", "str": f" (quote a value that looks like a number: {name}='{text}')"}
        raise CourseError(f"LLM_SETTINGS: {name}={text} is not a valid value: {name} takes "
                          f"{annotation}{''.join(hint[t] for t in allowed if t in hint)}.")
    if isinstance(value, (int, float)) and value < 0:
        raise CourseError(f"LLM_SETTINGS: {name}={text} is negative: use 0 or more.")
    return value

"""Profiles: one setting, `LLM_PROFILE`, picks every size in the course.

- ``ci``: the tests, on 2 CPU cores, in a few minutes; the embedded corpus.
- ``cpu``: a laptop, about 30 minutes for all notebooks; the embedded corpus.
- ``colab``: a free Colab T4 (fp16), 1-2 hours; hub datasets.
- ``gpu``: A100/H100s, also several through torchrun; a ~124M-parameter model.
- ``gpt2``: no pretraining of our own: OpenAI's GPT-2 (124M) fine-tuned into a chat model on a
  GPU, from notebook 05 on (see `start_from`).

A profile is a composition of the configs the code already has, one per part of the course:
the data (`DataConfig`, stages 02 and 05), the tokenizer (`TokenizerConfig`, stage 01), the
model (`model.GPTConfig`), and one training config per training stage: pretraining
(`PretrainConfig`, 04), fine-tuning (`train.TrainConfig`, 06) and reinforcement
(`ReinforceConfig`, 06b). Each stage is given its config whole, and every setting it uses is
in it: `print(profile.sft)` shows what fine-tuning runs with.

When `LLM_PROFILE` is unset, a machine with CUDA gets ``colab`` and any other gets ``cpu``;
``gpu`` is only used when asked for. `LLM_CORPUS` replaces the profile's corpus (for example
``LLM_CORPUS=data.txt`` to train on your own text), and `LLM_SETTINGS` any other setting by
its dotted name (``LLM_SETTINGS="pretrain.max_steps=1500 sft.optimizer=muon model.n_layer=6"``),
so that an experiment needs no edit.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, fields, is_dataclass, replace

from .corpus import PYTHON_DOCS
from .device import default_device
from .errors import CourseError
from .model import GPTConfig, flops_per_token
from .settings import SettingError, check_settings, require, setting
from .tokenizer import SPECIAL_TOKENS
from .train import TrainConfig, tied_head_rate_problem

FINEWEB_EDU = "hf:fineweb-edu"     # corpus.HUB_CORPORA: the sample-10BT subset, streamed
# how reinforcement weighs the answers it samples (see reinforce.py)
REINFORCE_METHODS = ("rejection", "grpo")


@dataclass(frozen=True)
class MixtureSource:
    """A hub instruction set in the SFT mixture (see sft_sources.HUB_SOURCES)."""
    name: str
    cap: int = setting(low=1)                   # at most this many conversations are read
    # each conversation is seen this many times per pass (2.0: twice)
    weight: float = setting(1.0, low=0, above=True)

    def __post_init__(self):
        check_settings(self)


# A made-up name for every fourth question about a real object. Saying "I don't know
# json.flatten_tree" takes copying a name the model never saw, a skill that needs many examples;
# too many, and the model says "I don't know" about real objects too. On the cpu world
# (benchmarks/extraction_levers.md): 0.5 gave 30% right "I don't know"s on the test's names and
# 1.0 59%, but the held-out objects fell from about 41% to 28% and 32%.
UNKNOWN_SHARE = 0.25


@dataclass(frozen=True)
class DataConfig:
    """What stage 02 reads for pretraining and stage 05 for fine-tuning."""
    corpus: str                     # see corpus.load_corpus: python-docs, files, or hf:<id>
    # text stage 02 reads, ~4 bytes a token (None: all of it)
    corpus_max_bytes: int | None = setting(low=1, optional=True)
    # share of documents held out for validation
    val_fraction: float = setting(low=0, high=1, above=True, below=True)
    # Each training document of the Python documentation is written this many times: notebook
    # 07 asks about it, and a few readings are needed to learn a docstring (beyond ~8, repeats
    # teach less than new text). A corpus without it (FineWeb-Edu, your files) gets it added;
    # python-docs+packages holds it already, and the copies weigh it against the packages'.
    # 0: not added. LLM_CORPUS=python-docs sets it to 0 (copies of everything are just more steps).
    docs_copies: int = setting(0, low=0)
    # The world notebook 07 asks about: the first `world` documented objects by world.WORLD_RULE
    # (None: every one). Fine-tuning asks about half of them; the other half is held out.
    world: int | None = setting(None, low=2, optional=True)
    # Each world object's facts are written in world.FORM_OPENINGS' six name-first forms, each
    # this many times, so that pretraining reads every fact about a hundred times (notebook 02
    # prints how many: see world.readings). 0: not written.
    world_copies: int = setting(0, low=0)
    # Mixed training: this share (0 to 1) of the fine-tuning conversations of the training split
    # is read in pretraining too, in the chat format, each written `mixed_copies` times (see
    # documentation.pretraining_conversations). They ask about the world's fine-tuning half
    # only: pretraining never reads a question about a held-out object.
    mixed_questions: float = setting(0.0, low=0, high=1)
    mixed_copies: int = setting(1, low=1)
    # Made-up names asked per question about a real object in fine-tuning's splits (and so in
    # mixed training): see UNKNOWN_SHARE for what more and fewer of them do. 0: none; at most 4,
    # beyond which fine-tuning would be mostly "I don't know".
    unknown_share: float = setting(UNKNOWN_SHARE, low=0, high=4)
    # Copy practice: this many sentences that write a made-up name and then the same name again
    # (copy_practice.py), read in pretraining so that the model learns to copy a name it has
    # never seen, as "I don't know json.dumsp" needs. 0: none.
    copy_practice: int = setting(0, low=0)
    # Exact-match facts: fine-tuning also asks each object of its half (a module aside) what kind
    # of object it is and where it is written ("A function in the module json."), and notebook 07
    # the held-out half: answers scored word for word, with no judge (documentation.KIND_TEMPLATES).
    kind_questions: bool = False
    sft_mixture: tuple[MixtureSource, ...] = ()   # hub instruction sets added to the docs questions
    # processes for tokenizing (None: all cores)
    tokenize_workers: int | None = setting(None, low=1, optional=True)

    def __post_init__(self):
        check_settings(self)


@dataclass(frozen=True)
class TokenizerConfig:
    """What notebook 01 trains on; the vocabulary's size is the model's (`model.vocab_size`)."""
    bpe_train_bytes: int = setting(low=1)   # text given to the from-scratch trainer
    train_bytes: int = setting(low=1)       # text notebook 01 reads, 9/10 of it for the `tokenizers` trainer

    def __post_init__(self):
        check_settings(self)


@dataclass(frozen=True)
class PretrainConfig(TrainConfig):
    """Pretraining's settings: the training loop's, and two of its own."""
    sample_prompt: str = "json.dumps("    # completed at every evaluation, to watch the model learn
    # True: during the learning rate's final decay (schedule "wsd"), pretraining reads only the
    # documentation's repeats (docs_copies of 2 or more, in a corpus that is not the documentation
    # alone). The model learns from all the text while the rate is high, then ends on the text
    # notebook 07 asks about ("annealing" on it).
    anneal_on_docs: bool = False

    def __post_init__(self):
        super().__post_init__()
        require(self, "anneal_on_docs", not self.anneal_on_docs or self.schedule == "wsd",
                f"it anneals during the final decay of schedule='wsd', and the schedule is {self.schedule!r}: "
                f"set pretrain.schedule=wsd too, or turn pretrain.anneal_on_docs off")


@dataclass(frozen=True)
class ReinforceConfig(TrainConfig):
    """Reinforcement's settings: the training loop's, and how its batches are sampled. A batch
    is `batch_size` answers: `samples` answers to each of batch_size / samples fine-tuning
    questions (at least two questions, one of each kind: see reinforce.SampledAnswers)."""
    # answers to one question, compared with each other: a group of one learns nothing
    samples: int = setting(8, low=2)
    method: str = setting("grpo", choices=REINFORCE_METHODS)

    def __post_init__(self):
        super().__post_init__()
        require(self, "samples", self.batch_size % self.samples == 0,
                f"batch_size={self.batch_size} answers must be a whole number of groups of samples")
        require(self, "batch_size", self.batch_size // self.samples >= 2,
                f"a batch asks at least two questions (a documented and a made-up object), so it "
                f"holds at least 2 x samples = {2 * self.samples} answers")

    @property
    def questions_per_batch(self) -> int:
        return self.batch_size // self.samples


@dataclass(frozen=True)
class Profile:
    name: str
    data: DataConfig
    tokenizer: TokenizerConfig | None     # None: the tokenizer comes with `start_from`
    model: GPTConfig                # vocab_size: the tokenizer's target; the model gets the real one
    pretrain: PretrainConfig | None       # None: no pretraining of ours (`start_from`)
    sft: TrainConfig
    reinforce: ReinforceConfig
    # None: fine-tuning starts from the model of notebook 04. A GPT-2 checkpoint (hub id such as
    # "gpt2" or "gpt2-medium", or a folder): notebook 05 puts its tokenizer and weights where
    # notebooks 01 and 04 put ours (gpt2_weights.start_from_gpt2), and 05-07 run on them.
    start_from: str | None = None
    # every random draw of a run comes from it: the initial weights, the order of the windows,
    # the answers reinforcement samples (see seeds.py)
    seed: int = setting(1337, low=0)

    def __post_init__(self):
        """The whole profile is checked when it is made: each config checked its own fields, and
        here what no config can check alone."""
        check_settings(self)
        require(self, "start_from", self.start_from or (self.pretrain and self.tokenizer),
                "a profile without a tokenizer and a pretraining config of its own must start from GPT-2")
        for part in TRAINING_PARTS:
            config = getattr(self, part)
            problem = config and tied_head_rate_problem(self.model.tied_head, config)
            if problem:
                raise SettingError(f"{part}.head_learning_rate", config.head_learning_rate, problem)
            if part != "pretrain" and config.sample_interval:
                raise SettingError(f"{part}.sample_interval", config.sample_interval,
                                   "only pretraining prints samples while it trains (notebook 07 talks to the "
                                   "fine-tuned model): keep it 0")
        annealing = self.pretrain and self.pretrain.anneal_on_docs
        if annealing and (self.data.corpus == PYTHON_DOCS or self.data.docs_copies < 2):
            raise SettingError("pretrain.anneal_on_docs", True,
                               f"it ends pretraining on the documentation's repeats, which data.corpus="
                               f"{self.data.corpus!r} with data.docs_copies={self.data.docs_copies} does not write: "
                               f"set data.docs_copies to 2 or more with a corpus that is not the documentation "
                               f"alone, or turn it off")
        if not self.start_from:
            smallest = 256 + len(SPECIAL_TOKENS)
            if self.model.vocab_size < smallest:
                raise SettingError("model.vocab_size", self.model.vocab_size,
                                   f"a byte-level tokenizer has the 256 bytes and {len(SPECIAL_TOKENS)} "
                                   f"special tokens, so it must be at least {smallest}")

    def summary(self) -> str:
        """The profile in one line: what a notebook prints first (print(profile) shows every setting)."""
        model = self.model
        if self.start_from:
            return (f"profile {self.name}: OpenAI's {self.start_from} fine-tuned (no pretraining of ours), "
                    f"vocabulary {model.vocab_size:,}, windows of {model.context_length}, "
                    f"{self.sft.max_steps:,} fine-tuning steps")
        data = self.data
        corpus = data.corpus if data.corpus_max_bytes is None else f"{data.corpus} ({data.corpus_max_bytes / 1e6:g} MB)"
        return (f"profile {self.name}: corpus {corpus}, vocabulary {model.vocab_size:,}, "
                f"{model.n_layer} layers x {model.n_embd} wide, {model.n_head} heads, context "
                f"{model.context_length}, {self.pretrain.max_steps:,} pretraining + "
                f"{self.sft.max_steps:,} fine-tuning steps")

    def describe(self, part: str) -> str:
        """The settings of one part ("pretrain", say), one a line: what a stage's notebook prints."""
        return describe(getattr(self, part), part)

    def __str__(self) -> str:
        return ("\n\n".join(self.describe(part) for part in PARTS if getattr(self, part) is not None)
                + f"\n\nstart_from  {self.start_from}\nseed        {self.seed}")


PARTS = ("data", "tokenizer", "model", "pretrain", "sft", "reinforce")
TRAINING_PARTS = ("pretrain", "sft", "reinforce")


def describe(config, title: str) -> str:
    """A config as a titled list of settings, one a line: what the notebooks print."""
    width = max(len(f.name) for f in fields(config))
    return f"{title} ({type(config).__name__})\n" + "\n".join(
        f"  {f.name:<{width}}  {getattr(config, f.name)}" for f in fields(config))


# The model of every pretraining profile: GPT-2's blocks with the choices since GPT-2 that won in
# benchmarks/ablations.py (the cpu model, same training time): rotary positions, RMSNorm, ReLU^2.
# QK-norm, an untied head, zero-initialized projections and logit soft-capping did not help at
# this size, and stay off. Embedding rows are padded to a multiple of 64 (tensor cores).
MODERN_MODEL = {"positions": "rope", "norm": "rmsnorm", "mlp": "relu2", "vocab_multiple": 64}
# and its pretraining: Muon for the matrices, warmup-stable-decay
MODERN_TRAINING = {"optimizer": "muon", "schedule": "wsd"}

# The cpu world: the largest world of benchmarks/readings.py whose facts the cpu model recalled
# from the name 70% of the time or more, in the first forms measured (82% at 500 objects, 56
# readings each; 50% at 1,000); in the world's forms, 9 copies make them about as much text as
# the documentation, 166 readings each, and 98% were recalled. The ci world is what its 300 KB
# of documentation allows; colab's and gpu's copies are sized for about 100 readings at their
# budgets by the same arithmetic (notebook 02 estimates them), not measured on a GPU yet.
CPU_WORLD = {"world": 500, "world_copies": 9}
# Mixed training (Physics of Language Models 3.1, arXiv 2309.14316): every fine-tuning
# conversation read in pretraining too, written 3 times. Measured on the cpu model (same steps,
# same fine-tuning, 250 held-out questions; benchmarks/extraction_levers.md): held-out objects
# answered right 21% (17-27%) without it, 35% (30-41%) with it, and small talk in form 38 of 47
# -> 47 of 47. The facts' readings fall from 162 to 137 (the conversations are 15% of the
# tokens); storage stays at 99%. 6 copies did no better beyond the intervals.
MIXED_TRAINING = {"mixed_questions": 1.0, "mixed_copies": 3}
# Copy practice (copy_practice.py): sentences that write a made-up name twice, so that the model
# learns to copy a name it never read ("I don't know json.dumsp"). Measured on the cpu model
# (benchmarks/extraction_levers.md, the fine-tuned model of 06): made-up names answered right
# 2% (1-7%) without it, 5% with 4,000 sentences, 55% with 12,000, and 58% with the profile's
# 16,000; the held-out objects 41% -> 34% (after reinforcement 48% -> 37%), the facts read 107
# times instead of 137. colab and gpu have none: models trained on hundreds of millions
# of tokens of web text learn to copy on their own (induction heads form early in training:
# Olsson et al., arXiv 2209.11895); not measured here.
CPU_COPY_PRACTICE = 16_000
# With copy practice the copy is learned in pretraining, and fewer made-up questions are needed
# to teach when to decline: three quarters of UNKNOWN_SHARE measured held-out 38% (33-45%),
# untaught 27% (22-33%), made-up names 54% (45-63%) against the full share's 34%, 21%, 58% at 06
# (benchmarks/extraction_levers.md; every difference within the intervals). Through the notebooks,
# after 06b: 38%, 26%, 63% and small talk 46 of 47, against 37%, 22%, 61% and 42 of 47.
CPU_UNKNOWN_SHARE = 0.1875

# small, clean sets weigh more; large synthetic ones are capped
COLAB_MIXTURE = (
    MixtureSource("smoltalk", 2_500, weight=2.0), MixtureSource("no_robots", 9_500),
    MixtureSource("oasst", 5_000), MixtureSource("dolly", 5_000), MixtureSource("alpaca", 10_000),
    MixtureSource("gsm8k", 7_500), MixtureSource("smol_smoltalk", 10_000),
    MixtureSource("lima", 1_000, weight=2.0), MixtureSource("slimorca", 5_000),
    MixtureSource("ultrachat", 10_000))
GPU_MIXTURE = tuple(MixtureSource(m.name, m.cap * 5, m.weight) for m in COLAB_MIXTURE)

def fine_tuning(max_steps: int, learning_rate: float, batch_size: int, eval_batches: int,
                grad_accum_steps: int = 1) -> TrainConfig:
    """Fine-tuning's settings. It starts from a trained model: no weight decay (it would pull the
    pretrained weights toward zero), warmup over a twentieth of the steps, and an evaluation
    every eighth."""
    return TrainConfig(max_steps=max_steps, learning_rate=learning_rate, warmup_steps=max(1, max_steps // 20),
                       batch_size=batch_size, grad_accum_steps=grad_accum_steps, weight_decay=0.0,
                       eval_interval=max(1, max_steps // 8), eval_batches=eval_batches)


def reinforcement(max_steps: int, learning_rate: float, batch_size: int, eval_batches: int,
                  grad_accum_steps: int = 1, samples: int = 8) -> ReinforceConfig:
    """Reinforcement's settings: as fine-tuning's, with warmup over a tenth of the steps and a
    constant rate after it (its batches change with the model: no schedule to anneal), an
    evaluation every quarter, and never compiled (its batches change length at every step)."""
    return ReinforceConfig(max_steps=max_steps, learning_rate=learning_rate, warmup_steps=max(1, max_steps // 10),
                           batch_size=batch_size, samples=samples, grad_accum_steps=grad_accum_steps,
                           weight_decay=0.0, min_lr_ratio=1.0, eval_interval=max(1, max_steps // 4),
                           eval_batches=eval_batches, compile=False)


PROFILES = {
    "ci": Profile(
        name="ci",
        data=DataConfig(corpus="python-docs", corpus_max_bytes=300_000, val_fraction=0.1, world=100, world_copies=2,
                        **MIXED_TRAINING, copy_practice=400, tokenize_workers=2),
        tokenizer=TokenizerConfig(bpe_train_bytes=150_000, train_bytes=300_000),
        model=GPTConfig(vocab_size=1024, context_length=128, n_layer=2, n_head=2, n_embd=64, **MODERN_MODEL),
        pretrain=PretrainConfig(max_steps=150, learning_rate=1e-2, warmup_steps=10, batch_size=16,
                                eval_interval=50, sample_interval=50, eval_batches=4, **MODERN_TRAINING),
        # as under cpu, pretraining has read the fine-tuning conversations: longer runs raised
        # the validation loss
        sft=fine_tuning(max_steps=20, learning_rate=3e-4, batch_size=16, eval_batches=4),
        reinforce=reinforcement(max_steps=4, learning_rate=1e-4, batch_size=8, samples=4, eval_batches=8)),
    "cpu": Profile(
        name="cpu",
        data=DataConfig(corpus="python-docs", corpus_max_bytes=None, val_fraction=0.05, **CPU_WORLD, **MIXED_TRAINING,
                        copy_practice=CPU_COPY_PRACTICE, unknown_share=CPU_UNKNOWN_SHARE),
        tokenizer=TokenizerConfig(bpe_train_bytes=2_000_000, train_bytes=10_000_000),
        model=GPTConfig(vocab_size=4096, context_length=256, n_layer=4, n_head=4, n_embd=192, **MODERN_MODEL),
        pretrain=PretrainConfig(max_steps=800, learning_rate=4e-3, warmup_steps=50, batch_size=16,
                                eval_interval=100, sample_interval=100, eval_batches=10, **MODERN_TRAINING),
        # Pretraining has read the fine-tuning conversations (mixed training): the base model
        # already answers, and fine-tuning only polishes. Measured after mixed training
        # (benchmarks/extraction_levers.md): held-out objects right 44% (38-50%) with no
        # fine-tuning, 40% (34-46%) after 20 steps, 36% after 40, 35% after 150, whose validation
        # loss was lowest at step 18 and rose after
        sft=fine_tuning(max_steps=20, learning_rate=5e-4, batch_size=16, eval_batches=10),
        reinforce=reinforcement(max_steps=240, learning_rate=5e-5, batch_size=64, eval_batches=3)),
    "colab": Profile(
        name="colab",
        data=DataConfig(corpus=FINEWEB_EDU, corpus_max_bytes=1_000_000_000, val_fraction=0.005,
                        docs_copies=8, world=2000, world_copies=14, **MIXED_TRAINING,
                        sft_mixture=COLAB_MIXTURE),
        tokenizer=TokenizerConfig(bpe_train_bytes=5_000_000, train_bytes=200_000_000),
        model=GPTConfig(vocab_size=16384, context_length=512, n_layer=8, n_head=8, n_embd=512, **MODERN_MODEL),
        pretrain=PretrainConfig(max_steps=5000, learning_rate=6e-4, warmup_steps=200, batch_size=32,
                                grad_accum_steps=4, eval_interval=250, sample_interval=250, eval_batches=50,
                                sample_prompt="The most important thing about", **MODERN_TRAINING),
        sft=fine_tuning(max_steps=2000, learning_rate=2e-4, batch_size=32, grad_accum_steps=4, eval_batches=50),
        reinforce=reinforcement(max_steps=200, learning_rate=2e-5, batch_size=32, grad_accum_steps=4,
                                eval_batches=50)),
    "gpu": Profile(
        name="gpu",
        data=DataConfig(corpus=FINEWEB_EDU, corpus_max_bytes=20_000_000_000, val_fraction=0.001,
                        docs_copies=8, world_copies=16, **MIXED_TRAINING,
                        sft_mixture=GPU_MIXTURE),
        tokenizer=TokenizerConfig(bpe_train_bytes=5_000_000, train_bytes=1_000_000_000),
        model=GPTConfig(vocab_size=32768, context_length=1024, n_layer=12, n_head=12, n_embd=768, **MODERN_MODEL),
        pretrain=PretrainConfig(max_steps=10000, learning_rate=6e-4, warmup_steps=700, batch_size=32,
                                grad_accum_steps=16, eval_interval=500, sample_interval=500, eval_batches=100,
                                sample_prompt="The most important thing about", **MODERN_TRAINING),
        sft=fine_tuning(max_steps=3000, learning_rate=1e-4, batch_size=32, grad_accum_steps=16, eval_batches=100),
        reinforce=reinforcement(max_steps=400, learning_rate=1e-5, batch_size=16, grad_accum_steps=16,
                                eval_batches=200)),
    # GPT-2's tokenizer (50,257 ids) with the 4 chat tokens, and GPT-2's own layout and sizes
    # (its config.json): nothing is pretrained or tokenized here, so it has no config for either
    "gpt2": Profile(
        name="gpt2",
        data=DataConfig(corpus="python-docs", corpus_max_bytes=None, val_fraction=0.05, world=CPU_WORLD["world"],
                        sft_mixture=COLAB_MIXTURE),
        tokenizer=None,
        model=GPTConfig(vocab_size=50_261, context_length=512, n_layer=12, n_head=12, n_embd=768, vocab_multiple=64),
        pretrain=None,
        sft=fine_tuning(max_steps=1000, learning_rate=5e-5, batch_size=16, grad_accum_steps=4, eval_batches=20),
        reinforce=reinforcement(max_steps=200, learning_rate=1e-5, batch_size=32, grad_accum_steps=4,
                                eval_batches=10),
        start_from="gpt2"),
}


def derived(base: Profile, name: str, settings: dict[str, object], same_compute: bool = False) -> Profile:
    """A profile that differs from `base` by `settings` (dotted names, as LLM_SETTINGS writes
    them), under its own name (and so its own artifacts folder). A profile of 6 layers x 256 in
    the cpu budget is one line::

        derived(PROFILES["cpu"], "cpu-6x256", {"model.n_layer": 6, "model.n_embd": 256}, same_compute=True)

    With `same_compute`, each training stage's steps (and its warmup, evaluations and samples)
    are scaled so that it does as many FLOPs as the base's: by the ratio of FLOPs per step,
    model.flops_per_token times the tokens of a step (6 x 256 costs 2.2 times 4 x 192 a token,
    so it gets 360 pretraining steps instead of 800)."""
    profile = replace(with_settings(base, settings), name=name)
    if not same_compute:
        return profile
    scaled = {}
    for part in TRAINING_PARTS:
        if getattr(profile, part) is None:
            continue
        ratio = step_flops(base, part) / step_flops(profile, part)
        config = getattr(profile, part)
        for field in ("max_steps", "warmup_steps", "eval_interval", "sample_interval"):
            if hasattr(config, field) and getattr(config, field):
                scaled[f"{part}.{field}"] = max(1, round(getattr(config, field) * ratio))
    return with_settings(profile, scaled)



def step_flops(profile: Profile, part: str) -> float:
    """The training FLOPs of one optimizer step of `part`, by the package's formula: per token
    (model.flops_per_token) times the tokens of a step (full windows: an upper bound for
    reinforcement, whose answers are shorter)."""
    config = getattr(profile, part)
    return flops_per_token(profile.model) * config.batch_size * config.grad_accum_steps * profile.model.context_length


def default_profile_name() -> str:
    """colab on a CUDA GPU, cpu elsewhere (Apple's mps included: its speed is not measured yet)."""
    return "colab" if default_device().type == "cuda" else "cpu"


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
            profile = with_settings(profile, {"data.docs_copies": 0, "pretrain.anneal_on_docs": False})
        profile = with_settings(profile, {"data.corpus": corpus})
    settings = parse_settings(os.environ.get("LLM_SETTINGS", ""))
    try:
        return with_settings(profile, settings)
    except CourseError as error:   # a value its config refuses: model.n_head=5, sft.eval_interval=0
        raise CourseError(f"LLM_SETTINGS: {error}") from None


def with_settings(profile: Profile, settings: dict[str, object]) -> Profile:
    """`profile` with settings changed by dotted name: {"sft.optimizer": "muon", "model.n_layer": 6}.
    The settings of one part change together (max_steps and warmup_steps are checked against
    each other once both are set); a value a config refuses raises a SettingError that names it
    as LLM_SETTINGS does ("sft.eval_interval=0 ...")."""
    by_part: dict[str, dict[str, object]] = {}
    for name, value in settings.items():
        part, _, field = name.partition(".")
        by_part.setdefault(part if field else "", {})[field or part] = value
    changed = by_part.pop("", {})
    for part, changes in by_part.items():
        if getattr(profile, part) is None:
            raise CourseError(f"{part}.{next(iter(changes))} is not a setting of the {profile.name} profile: it "
                              f"starts from {profile.start_from} and has no {part} of its own.")
        try:
            changed[part] = replace(getattr(profile, part), **changes)
        except SettingError as error:   # the part's config named its own field: name it as a setting
            raise error.within(part) from None
    return replace(profile, **changed)    # checked whole, once: its own checks name their settings


# set by their own variables (LLM_PROFILE names the profile and its artifacts folder; LLM_CORPUS
# also decides whether the documentation is added), or too structured for one word
NOT_IN_SETTINGS = {"name": "LLM_PROFILE", "data.corpus": "LLM_CORPUS", "data.sft_mixture": "profiles.py"}


def setting_types() -> dict[str, str]:
    """Every setting's dotted name and its type, as written in its dataclass."""
    example = PROFILES["ci"]
    types = {f.name: str(f.type) for f in fields(Profile) if not is_dataclass(getattr(example, f.name))}
    for part in PARTS:
        types.update({f"{part}.{f.name}": str(f.type) for f in fields(getattr(example, part))})
    return types


def parse_settings(text: str) -> dict[str, object]:
    """``"pretrain.max_steps=1500 data.docs_copies=6"`` (spaces or commas between) as dotted
    setting names and typed values."""
    types = setting_types()
    settings = {}
    for item in setting_items(text):
        name, equals, value_text = item.partition("=")
        if not equals or not value_text:
            raise CourseError(f"LLM_SETTINGS: {item!r} is not NAME=VALUE: write for example "
                              f"pretrain.max_steps=1500 (a pair in brackets: sft.betas=(0.9,0.99)).")
        if name in NOT_IN_SETTINGS:
            raise CourseError(f"LLM_SETTINGS: {name} cannot be set there: use {NOT_IN_SETTINGS[name]}.")
        if name not in types:
            raise CourseError(unknown_setting_message(name, types))
        settings[name] = setting_value(name, value_text, types[name])
    return settings


def setting_items(text: str) -> list[str]:
    """The NAME=VALUE items of `text`, split at spaces and commas, except inside brackets: a pair
    such as betas=(0.9, 0.99) is one item."""
    items, current, depth = [], "", 0
    for character in text:
        depth += (character in "([") - (character in ")]")
        if character in " ,\t\n" and depth == 0:
            items.append(current)
            current = ""
        else:
            current += character
    return [item for item in items + [current] if item]


def unknown_setting_message(name: str, types: dict[str, str]) -> str:
    """One sentence for a name that is not a setting, with the names it may have meant."""
    field = name.rpartition(".")[2]
    candidates = [known for known in types if known.rpartition(".")[2] == field]
    hint = (f"did you mean {' or '.join(candidates)}?" if candidates
            else f"settings are named by their part ({', '.join(PARTS)}), and print(profile) lists them.")
    return f"LLM_SETTINGS: {name!r} is not a setting of the profile: {hint}"


def setting_value(name: str, text: str, annotation: str) -> object:
    """`text` as a value of the type `annotation` names: 1500, 4e-3, rope, True, None."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text                         # a bare word: a string such as rope or muon
    allowed = {type_name.strip().split("[")[0] for type_name in annotation.replace("None", "NoneType").split("|")}
    if type(value) is int and "float" in allowed:
        value = float(value)
    if isinstance(value, tuple) and "tuple" in allowed:   # betas: a pair of floats
        value = tuple(float(part) if type(part) is int else part for part in value)
    if type(value).__name__ not in allowed:
        hint = {"bool": " (True or False)", "str": f" (quote a value that looks like a number: {name}='{text}')",
                "tuple": f" (in brackets, no spaces: {name}=(0.9,0.95))"}
        raise CourseError(f"LLM_SETTINGS: {name}={text} is not a valid value: {name} takes "
                          f"{annotation}{''.join(hint[t] for t in allowed if t in hint)}.")
    return value   # its range is checked by its config (see settings.py)

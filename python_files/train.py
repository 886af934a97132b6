"""One training loop for pretraining, supervised fine-tuning and reinforcement.

They differ only in their batches: SFT batches carry a loss mask, reinforcement's a weight
per answer token (see reinforce.py). The loop does what every
serious trainer does, in about the order it does it:

- AdamW, with weight decay on the matrices only (not on biases, LayerNorms or position
  tables, where decay only hurts); or Muon for the blocks' weight matrices (their updates
  orthogonalized, so that every direction learns) and AdamW for the rest;
- a learning rate that warms up linearly, then follows a cosine down to a floor, or stays
  flat and decays linearly at the end (warmup-stable-decay);
- gradient accumulation (several forward passes per optimizer step) and gradient clipping;
- mixed precision where the device has it (bf16 on recent GPUs, fp16 with loss scaling on
  older ones such as the T4, fp32 on CPU);
- periodic evaluation (validation loss, and bits per byte for pretraining), a checkpoint
  `last.pt` at every evaluation and `best.pt` at the best one, written atomically;
- resuming from `last.pt`: model, optimizer, loss scaler and step (the batches are numbered,
  so the loader continues with the right one), so a resumed run continues exactly where it
  stopped; and only when it is the same run: same inputs, same model, same settings
  (see `checkpoint.py`);
- Ctrl-C (or SIGTERM, as clusters and Colab send before they stop a machine) finishes the
  current step, writes `last.pt` and stops with one sentence: run it again to resume;
- a JSONL log, one line per step, that the plots read, written before each checkpoint so that
  it always holds every step up to the checkpoint, once;
- on GPUs: TF32 matmuls, the fused AdamW kernel, and optionally `torch.compile`;
- several processes with DistributedDataParallel when launched by torchrun
  (see `distributed.py`): the same loop, each process on its own batches.

Run it from a notebook with `train(...)`, or as a script: ``python -m python_files.pretrain``,
or ``torchrun --nproc_per_node=N -m python_files.pretrain``.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch.nn.parallel import DistributedDataParallel

from .artifacts import Artifacts, exclusive, remove_stale_temporaries, writing
from .checkpoint import (Checkpoints, RunRecord, check_same_run, copy_checkpoint, load_resumable,
                         open_log, save_checkpoint, shown)
from .device import PRECISIONS, autocast, compile_enabled, precision_for, use_fast_matmuls
from .distributed import (Distributed, any_over_processes, mean_over_processes, run_in_every_process,
                          sum_over_processes, wait_for_all)
from .errors import CourseError
from .model import GPT, loss_weight, masked_sum, summed_loss, token_losses
from .muon import FORMATS, Muon, chosen_format
from .seeds import seed_for
from .settings import check_settings, require, setting


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one training run: what `train` does, step by step. Each states the values
    it takes (see settings.py); the run's seed is the profile's (`Profile.seed`)."""
    max_steps: int = setting(low=1)
    # the peak rate of the blocks' matrices, and of every parameter not named below
    learning_rate: float = setting(low=0, above=True)
    warmup_steps: int = setting(low=0)           # at most max_steps
    batch_size: int = setting(16, low=1)         # sequences per forward pass on one device
    grad_accum_steps: int = setting(1, low=1)    # forward passes per optimizer step, over all processes
    min_lr_ratio: float = setting(0.1, low=0, high=1)   # the schedule ends at learning_rate * min_lr_ratio
    weight_decay: float = setting(0.1, low=0, high=1)
    betas: tuple[float, float] = setting((0.9, 0.95), low=0, high=1, below=True, pairs=True)
    grad_clip: float = setting(1.0, low=0, above=True)   # the largest gradient norm a step takes
    eval_interval: int = setting(100, low=1)     # steps between evaluations (and checkpoints)
    eval_batches: int = setting(20, low=1)       # validation batches per evaluation
    sample_interval: int = setting(0, low=0)     # steps between printed samples (0: none)
    # auto: bf16 from sm80, fp16 below, fp32 on CPU (see device.py)
    precision: str = setting("auto", choices=PRECISIONS)
    compile: bool | None = None      # torch.compile the model; None: on with CUDA, except on Windows
    # "muon": Muon for the blocks' matrices, AdamW for the rest
    optimizer: str = setting("adamw", choices=("adamw", "muon"))
    # the number format of Muon's products: auto (the device's fast one), fp32, bf16
    newton_schulz: str = setting("auto", choices=("auto", *FORMATS))
    schedule: str = setting("cosine", choices=("cosine", "wsd"))   # "wsd": warmup, stable, then a
    decay_fraction: float = setting(0.3, low=0, high=1, above=True)   # linear decay over this share of the steps
    # peak rates of their own (None: learning_rate), as nanochat gives each kind of parameter its
    # own: the token (and position) embeddings, and an untied output head
    embedding_learning_rate: float | None = setting(None, low=0, above=True, optional=True)
    head_learning_rate: float | None = setting(None, low=0, above=True, optional=True)

    def __post_init__(self):
        check_settings(self)
        require(self, "warmup_steps", self.warmup_steps <= self.max_steps,
                f"the warmup cannot be longer than the run's max_steps={self.max_steps}")


def learning_rate_at(step: int, config: TrainConfig, peak: float | None = None) -> float:
    """Linear warmup from 0; then a cosine from the peak down to the floor at max_steps, or (wsd)
    the peak until the last `decay_fraction` of the steps, then a line down to the floor. The
    peak is `learning_rate`, or a parameter group's own (`peak`): every group follows the same
    schedule, scaled to its peak."""
    peak = config.learning_rate if peak is None else peak
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    floor = peak * config.min_lr_ratio
    if config.schedule == "wsd":
        remaining = min(1.0, (config.max_steps - step) / decay_steps(config))
        return floor + (peak - floor) * remaining
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def decay_steps(config: TrainConfig) -> int:
    """The number of steps of warmup-stable-decay's final decay, at the end of the run."""
    return max(1, round(config.max_steps * config.decay_fraction))


class Optimizers:
    """Several optimizers stepped as one: what the loop, the loss scaler and the checkpoints
    see of Muon + AdamW."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)


def make_optimizer(model: GPT, config: TrainConfig, device: torch.device):
    """AdamW with matrices that decay and vectors (biases, norm gains) and the position table that
    do not; with `optimizer="muon"`, the blocks' weight matrices go to Muon instead. Parameters
    of one optimizer with the same decay and peak rate share a group; each group keeps its peak
    rate as "peak_lr", which the loop's schedule scales (see `peak_learning_rates`)."""
    peaks = peak_learning_rates(model, config)
    muon = [p for n, p in model.named_parameters()
            if config.optimizer == "muon" and p.dim() == 2 and n.startswith("blocks.")]
    taken = {id(p) for p in muon}
    rest = [(n, p) for n, p in model.named_parameters() if id(p) not in taken]
    decays = [(n, p) for n, p in rest if p.dim() >= 2 and n != "wpe.weight"]
    keeps = [(n, p) for n, p in rest if p.dim() < 2 or n == "wpe.weight"]
    groups = [group for named, decay in ((decays, config.weight_decay), (keeps, 0.0))
              for group in groups_by_peak(named, peaks, weight_decay=decay)]
    # the fused kernel does the whole update in one launch on CUDA
    adamw = torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.betas,
                              fused=device.type == "cuda")
    if not muon:
        return adamw
    muon_groups = groups_by_peak([(n, p) for n, p in model.named_parameters() if id(p) in taken], peaks)
    return Optimizers(Muon(muon_groups, lr=config.learning_rate, weight_decay=config.weight_decay,
                           newton_schulz_dtype=FORMATS[chosen_format(config.newton_schulz, device)]), adamw)


def peak_learning_rates(model: GPT, config: TrainConfig) -> dict[str, float]:
    """Each parameter's peak rate, by name: the embeddings' and an untied head's own where set,
    `learning_rate` for the rest."""
    problem = tied_head_rate_problem(model.config.tied_head, config)
    if problem:
        raise CourseError(f"head_learning_rate={config.head_learning_rate} is not a valid value: {problem}.")
    embedding = config.embedding_learning_rate or config.learning_rate
    head = config.head_learning_rate or embedding
    return {name: embedding if name in ("wte.weight", "wpe.weight") else head if name == "lm_head.weight"
            else config.learning_rate for name, _ in model.named_parameters()}


def tied_head_rate_problem(tied_head: bool, config: TrainConfig) -> str | None:
    """Why `config.head_learning_rate` cannot be honoured, or None: a tied head is the embedding's
    matrix, which has one rate."""
    embedding = config.embedding_learning_rate or config.learning_rate
    if tied_head and config.head_learning_rate not in (None, embedding):
        return (f"it cannot differ from the embedding's rate ({embedding}): the head is the embedding's matrix "
                f"(model.tied_head=True). Set embedding_learning_rate instead, or model.tied_head=False")
    return None


def groups_by_peak(named_parameters, peaks: dict[str, float], **settings) -> list[dict]:
    """Parameter groups of one optimizer: the parameters with the same peak rate together, in
    the order they come (one group when every rate is the same)."""
    by_peak: dict[float, list] = {}
    for name, parameter in named_parameters:
        by_peak.setdefault(peaks[name], []).append(parameter)
    return [{"params": params, "lr": peak, "peak_lr": peak, **settings} for peak, params in by_peak.items()]


@dataclass
class TrainResult:
    step: int
    best_val_loss: float
    seconds: float


class TrainingStopped(CourseError):
    """Training was asked to stop (Ctrl-C or SIGTERM); its last.pt holds the step it reached."""


@dataclass
class TrainingState:
    """Everything a checkpoint holds besides the model's weights."""
    model: GPT
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    run: RunRecord
    step: int = 0
    best_val_loss: float = float("inf")

    def to_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "step": self.step,
                 "best_val_loss": self.best_val_loss, "torch_rng": torch.get_rng_state(),
                 **asdict(self.run)}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state()
        return state

    def restore(self, path: Path, checkpoint: dict) -> None:
        check_same_run(path, checkpoint, self.run)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])  # moves its tensors to the model's device
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.step, self.best_val_loss = checkpoint["step"], checkpoint["best_val_loss"]

    @staticmethod
    def restore_random_numbers(checkpoint: dict) -> None:
        """The random state the run had (dropout's), inside the loop's own copy of it."""
        torch.set_rng_state(checkpoint["torch_rng"])             # a CPU tensor, whatever the device
        if "cuda_rng" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state(checkpoint["cuda_rng"])


@dataclass
class Run:
    """What the loop works with besides the training state: the stage's settings and batches,
    where it writes, and how it runs (device, number format, processes). `train` makes it."""
    config: TrainConfig
    train_batches: object                  # next_batch, seek, report, batch_size (see `train`)
    val_batches: Callable                  # a fresh validation loader, the same windows every time
    checkpoints: Checkpoints
    device: torch.device
    precision: str
    distributed: Distributed
    micro_steps: int                       # forward passes per optimizer step in this process
    token_bytes: torch.Tensor | None = None
    sample: Callable[[GPT], str] | None = None
    progress: bool = True
    log: object = None                     # the open log file (the writing process only)
    stop: "StopRequest | None" = None

    @property
    def writer(self) -> bool:
        return self.distributed.is_main

    def evaluate(self, network) -> dict:
        return evaluate(network, self.val_batches(), self.config.eval_batches, self.device, self.precision,
                        self.token_bytes, self.distributed)


def train(model: GPT, train_batches, val_batches_factory: Callable, config: TrainConfig,
          checkpoints: Checkpoints, token_bytes: torch.Tensor | None = None,
          sample: Callable[[GPT], str] | None = None, progress: bool = True,
          distributed: Distributed = Distributed(), trained_on: dict | None = None, *,
          seed: int, stage: str) -> TrainResult:
    """Train `model` until `config.max_steps`, resuming from `checkpoints.last` if it exists.

    `train_batches` is a loader (`loader.RandomWindows`, or reinforcement's `SampledAnswers`):
    `next_batch()` gives (inputs, targets, loss_mask or None), `seek(n)` skips to the batch after
    the n drawn by all processes, `report()` a dict of numbers for the step's log line (the same
    keys in every process), and `batch_size` is named when a batch does not fit in memory.
    `val_batches_factory()` gives a fresh validation loader, the same windows every time.
    `trained_on` names the inputs with a fingerprint each ({"tokenizer": sha256, ...}): a
    checkpoint of other inputs is not resumed. Under torchrun every process calls this with its
    own loaders and `distributed`; only the first one writes, and holds the folder's lock.
    `token_bytes` (pretraining) gives each token id's length in bytes, for bits per byte (see
    `evaluate`). `seed` is the run's (`Profile.seed`), and `stage` the profile's part that
    `config` is ("sft", say): the sentences name its settings as the learner writes them.
    """
    device = next(model.parameters()).device
    precision = precision_for(device, config.precision)
    config = replace(config, compile=compile_enabled(config.compile, device))
    use_fast_matmuls(device)
    run = Run(config, train_batches, val_batches_factory, checkpoints, device, precision, distributed,
              micro_steps_per_process(config.grad_accum_steps, distributed), token_bytes, sample, progress)
    state = TrainingState(model, make_optimizer(model, config, device),
                          torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
                          # the precision used, not "auto": resumed on another GPU, "auto" may mean another one
                          # the seed too: a run continued with another seed would be neither run
                          RunRecord.of(model.config, replace(config, precision=precision),
                                       {**(trained_on or {}), "seed": seed}))
    with exclusive(checkpoints.folder, shown(checkpoints.folder)) if run.writer else contextlib.nullcontext():
        if run.writer:
            remove_stale_temporaries(checkpoints.folder)   # what a save that was killed left
        resumable = load_resumable(checkpoints)
        if resumable is not None:
            state.restore(*resumable)
            if any_over_processes(not checkpoints.best.exists(), distributed, device):
                state.best_val_loss = float("inf")   # best.pt was deleted: the next evaluation writes it
        train_batches.seek(state.step * config.grad_accum_steps)   # batches drawn by all processes so far
        network = wrap_for_training(model, config, distributed)
        # dropout draws from the process's generator (it takes no generator object): the loop
        # runs on a copy of it, seeded by the run's seed (or restored from last.pt), and the
        # process's own is as it was when train() returns
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                open_log(checkpoints.log, state.step) if run.writer else contextlib.nullcontext() as run.log, \
                StopRequest() as run.stop:
            if resumable is None:
                seed_dropout(seed_for(seed, f"{stage} dropout, process {distributed.rank}"), device)
            else:
                state.restore_random_numbers(resumable[1])
            try:
                return run_steps(state, network, run)
            except BatchTooLarge as error:
                raise CourseError(out_of_memory_advice(stage, config, error.batch_size)) from None


def seed_dropout(seed: int, device: torch.device) -> None:
    """Seed the generators dropout draws from, inside `train`'s copy of them: the CPU's, and the
    run's GPU's (not every GPU's, as torch.manual_seed would: the copy only covers this one)."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()] \
            .manual_seed(seed)


def run_steps(state: TrainingState, network, run: Run) -> TrainResult:
    """The loop itself: step, log, and every `eval_interval` steps evaluate and checkpoint."""
    from tqdm.auto import tqdm

    config, distributed, device = run.config, run.distributed, run.device
    bar = tqdm(total=config.max_steps, initial=state.step, desc="training", unit="step",
               disable=not (run.progress and run.writer))
    started = last_report = time.perf_counter()
    tokens_since_report = 0
    if state.step >= config.max_steps and not math.isfinite(state.best_val_loss):
        write_missing_best(state, network, run, bar)
    while state.step < config.max_steps:
        for group in state.optimizer.param_groups:
            group["lr"] = learning_rate_at(state.step, config, group["peak_lr"])
        lr = learning_rate_at(state.step, config)
        step = optimizer_step(network, state.optimizer, state.scaler, run.train_batches, run.micro_steps,
                              config.grad_clip, device, run.precision, distributed)
        train_loss, tokens_since_report = step.loss, tokens_since_report + step.tokens
        if not math.isfinite(train_loss):
            raise CourseError(non_finite_message(train_loss, state.step, run.checkpoints))
        state.step += 1
        record = {"step": state.step, "train_loss": train_loss, "lr": lr,
                  "seconds": round(time.perf_counter() - started, 2)}
        # what the batches measured while they were made (reinforcement: the answers' rewards)
        record.update({name: mean_over_processes(value, distributed, device)
                       for name, value in run.train_batches.report().items()})
        evaluating = state.step % config.eval_interval == 0 or state.step == config.max_steps
        if evaluating:
            record.update(run.evaluate(network))
            state.best_val_loss = min(state.best_val_loss, record["val_loss"])
            bar.set_postfix(train=f"{train_loss:.3f}", val=f"{record['val_loss']:.3f}")
            if run.progress and run.writer:   # a line of text per evaluation: what a saved notebook shows
                now = time.perf_counter()
                # the tokens that went through the model: reinforcement's batches are shorter
                # than a window, and their length changes from step to step
                speed = tokens_since_report / (now - last_report)
                bar.write(f"step {state.step:>6,} | train loss {train_loss:.3f} | val loss "
                          f"{record['val_loss']:.3f} | lr {lr:.2e} | {speed:,.0f} tokens/s")
                last_report, tokens_since_report = now, 0
        if run.writer and run.sample is not None and config.sample_interval \
                and state.step % config.sample_interval == 0:
            record["sample"] = run.sample(state.model)
            bar.write(f"step {state.step}: {record['sample']!r}")
        stopping = any_over_processes(run.stop.requested, distributed, device)
        if run.writer:
            # the log line first: a kill between the two leaves a log that is ahead of last.pt,
            # and resuming from last.pt drops the lines it will write again
            with writing(run.checkpoints.log):   # a full disk: one sentence, as for the checkpoints
                run.log.write(json.dumps(record) + "\n")
                run.log.flush()
            if evaluating or stopping:
                save_checkpoints(run.checkpoints, state,
                                 best=evaluating and record["val_loss"] == state.best_val_loss)
        bar.update()
        if stopping and state.step < config.max_steps:
            wait_for_all(distributed)   # no process ends before the first one has saved
            bar.close()
            raise TrainingStopped(f"Training stopped at step {state.step} of {config.max_steps}, saved "
                                  f"in {shown(run.checkpoints.last)}: run it again to resume from there.")
    bar.close()
    wait_for_all(distributed)   # no process leaves while the first one writes the last checkpoint
    return TrainResult(state.step, state.best_val_loss, time.perf_counter() - started)


def write_missing_best(state: TrainingState, network, run: Run, bar) -> None:
    """A finished run whose best.pt is gone: its final model, evaluated, becomes best.pt (so that
    "run 04_pretraining first", said by the next stage, works when followed)."""
    state.best_val_loss = run.evaluate(network)["val_loss"]
    if run.writer:
        save_checkpoints(run.checkpoints, state, best=True)
        bar.write(f"best.pt was missing: the final model of step {state.step} (validation loss "
                  f"{state.best_val_loss:.3f}) is saved as best.pt.")


def non_finite_message(loss: float, step: int, checkpoints: Checkpoints) -> str:
    kept = (f"the last good checkpoint is kept in {shown(checkpoints.last)}" if checkpoints.last.exists()
            else "no checkpoint was written yet, so the next run starts from scratch")
    return f"The loss became {loss} at step {step}: lower the learning rate; {kept}."


class StopRequest:
    """While active, Ctrl-C (SIGINT) and SIGTERM ask the loop to stop after the current step,
    instead of breaking it anywhere (mid optimizer update, say) with a long traceback.

    A second Ctrl-C stops at once. Signals less than a second apart count as one: torchrun
    forwards the terminal's Ctrl-C to workers that already received it.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested_at: float | None = None
        self.previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():   # signals reach only that thread
            self.previous = {number: signal.signal(number, self.request) for number in self.SIGNALS}
        return self

    def __exit__(self, *exception) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def request(self, number, frame) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()
            print("Stopping after this step, with a checkpoint (Ctrl-C again to stop at once).",
                  file=sys.stderr, flush=True)
        elif time.monotonic() - self.requested_at > 1.0:
            raise KeyboardInterrupt


def micro_steps_per_process(grad_accum_steps: int, distributed: Distributed) -> int:
    """Each process does its share of the accumulation: the tokens per step stay the same."""
    if grad_accum_steps % distributed.world_size:
        raise CourseError(f"grad_accum_steps={grad_accum_steps} must be a multiple of the "
                          f"{distributed.world_size} processes, so every step sees the same tokens.")
    return grad_accum_steps // distributed.world_size


def wrap_for_training(model: GPT, config: TrainConfig, distributed: Distributed):
    """The module the loop calls: compiled and/or wrapped in DDP. Checkpoints save `model`."""
    network = torch.compile(model) if config.compile else model
    if distributed.enabled:
        device = next(model.parameters()).device
        network = DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda" else None)
    return network


def out_of_memory_advice(stage: str, config: TrainConfig, batch_size: int) -> str:
    """The sentence for a batch that did not fit, naming the settings of the stage that ran."""
    fewer = (f" (at least 2 x {stage}.samples = {2 * config.samples} answers: lower {stage}.samples "
             f"below that)" if hasattr(config, "samples") else "")
    return (f"The GPU ran out of memory with {stage}.batch_size={batch_size}: lower {stage}.batch_size{fewer} "
            f"and raise {stage}.grad_accum_steps to keep the tokens per step.")


class BatchTooLarge(CourseError):
    """A batch did not fit in the GPU's memory; `train` names the stage's setting."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        super().__init__(f"The GPU ran out of memory with batch_size={batch_size}: lower batch_size "
                         f"and raise grad_accum_steps to keep the tokens per step.")


class StepResult(NamedTuple):
    loss: float      # the step's mean loss over all its targets, in all processes
    tokens: int      # the tokens that went through the model in the step, in all processes


def optimizer_step(network, optimizer, scaler, train_batches, micro_steps: int, grad_clip: float,
                   device, precision, distributed: Distributed = Distributed()) -> StepResult:
    """One optimizer step over `micro_steps` batches in each process.

    Every target weighs the same in the step, whichever micro-batch and process holds it: each
    micro-batch's summed loss is divided by the weight of the whole step (all its targets, or
    all its mask's weights, over every process). Dividing each micro-batch by its own mask count
    instead would make a target of a sparsely masked micro-batch weigh more, and the step
    depend on how the batch was split.
    """
    network.train()
    try:   # drawing a batch runs the model too where it is sampled (reinforcement)
        batches = [train_batches.next_batch() for _ in range(micro_steps)]
    except torch.OutOfMemoryError:
        raise BatchTooLarge(train_batches.batch_size) from None
    local_weight = sum(loss_weight(batch.targets, batch.loss_mask).item() for batch in batches)
    local_tokens = sum(batch.inputs.numel() for batch in batches)
    step_weight, tokens = sum_over_processes([local_weight, local_tokens], distributed, device)
    # DDP averages the gradients of the processes: times world_size, that average is their sum
    scale = distributed.world_size / max(step_weight, 1.0)
    total = torch.zeros((), device=device)
    try:
        for micro, (inputs, targets, loss_mask) in enumerate(batches):
            # DDP averages gradients across processes during backward; once per step is enough
            last = micro == micro_steps - 1
            no_sync = network.no_sync() if isinstance(network, DistributedDataParallel) and not last \
                else contextlib.nullcontext()
            with no_sync:
                with autocast(device, precision):
                    logits, _ = network(inputs)
                loss = summed_loss(logits, targets, loss_mask)
                scaler.scale(loss * scale).backward()
            total += loss.detach()
    except torch.OutOfMemoryError:
        raise BatchTooLarge(train_batches.batch_size) from None
    scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    # one synchronization per step, not per micro-batch
    [loss_sum] = sum_over_processes([total.item()], distributed, device)
    return StepResult(loss_sum / max(step_weight, 1.0), int(tokens))


@torch.no_grad()
def evaluate(network, val_batches, batches: int, device, precision, token_bytes: torch.Tensor | None = None,
             distributed: Distributed = Distributed()) -> dict:
    """The validation loss over `batches` batches in all, and with `token_bytes` bits per byte.

    Batch k of the validation windows (k < `batches`) is read by process k % world_size, as the
    loader numbers them: the same windows, and so the same loss and the same best.pt, on any
    number of processes. Each target weighs the same, as in `optimizer_step`.

    Bits per byte counts the bytes of each target token (`token_bytes[id]`: 0 for the special
    tokens, which stand for no text): the nats of the targets that are text, over ln 2, over
    their bytes. It compares models with different tokenizers: a tokenizer with longer tokens
    has fewer, harder targets, and the same text has the same bytes.
    """
    # the model inside DDP: processes may read a different number of batches, and DDP's forward
    # would wait for the others
    model = network.module if isinstance(network, DistributedDataParallel) else network
    model.eval()
    loss_sum = weight = text_loss_sum = text_bytes = 0.0
    for _ in range(distributed.rank, batches, distributed.world_size):
        inputs, targets, loss_mask = val_batches.next_batch()
        try:
            with autocast(device, precision):
                logits, _ = model(inputs)
            losses = token_losses(logits, targets)
        except torch.OutOfMemoryError:
            raise BatchTooLarge(len(inputs)) from None
        loss_sum += masked_sum(losses, loss_mask).item()
        weight += loss_weight(targets, loss_mask).item()
        if token_bytes is not None:
            target_bytes = token_bytes[targets].reshape(-1)
            text_loss_sum += losses[target_bytes > 0].sum().item()
            text_bytes += target_bytes.sum().item()
    model.train()
    loss_sum, weight, text_loss_sum, text_bytes = sum_over_processes(
        [loss_sum, weight, text_loss_sum, text_bytes], distributed, device)
    result = {"val_loss": loss_sum / max(weight, 1.0)}
    if token_bytes is not None:
        result["val_bpb"] = text_loss_sum / math.log(2) / max(text_bytes, 1.0)
    return result


def save_checkpoints(checkpoints: Checkpoints, state: TrainingState, best: bool) -> None:
    """Write last.pt, and best.pt when this evaluation is the best so far.

    best.pt goes first: killed between the two, the resumed run repeats these steps from the
    older last.pt and writes both again, whereas a last.pt written first would already count
    this loss as the best, and best.pt would stay behind for good.
    """
    if best:
        save_checkpoint(checkpoints.best, state.to_dict())
        copy_checkpoint(checkpoints.best, checkpoints.last)
    else:
        save_checkpoint(checkpoints.last, state.to_dict())


def run_from_terminal(stage: Callable[..., TrainResult], profile) -> None:
    """Run a training stage (pretrain, finetune, reinforce) with `profile` (the active one), as
    `python -m python_files.<stage>` does: alone, or under torchrun one process per device."""
    result, setup = run_in_every_process(lambda device, setup: stage(
        profile, Artifacts.for_profile(profile.name), device, distributed=setup))
    if setup.is_main:
        print(f"step {result.step}: best validation loss {result.best_val_loss:.3f} "
              f"({result.seconds / 60:.1f} min)")

"""One training loop for pretraining and supervised fine-tuning.

The two differ only in their batches: SFT batches carry a loss mask. The loop does what every
serious trainer does, in about the order it does it:

- AdamW, with weight decay on the matrices only (not on biases, LayerNorms or position
  tables, where decay only hurts);
- a learning rate that warms up linearly, then follows a cosine down to a floor;
- gradient accumulation (several forward passes per optimizer step) and gradient clipping;
- mixed precision where the device has it (bf16 on recent GPUs, fp16 with loss scaling on
  older ones such as the T4, fp32 on CPU);
- periodic evaluation (validation loss, and bits per byte for pretraining), a checkpoint
  `last.pt` at every evaluation and `best.pt` at the best one, written atomically;
- resuming from `last.pt`: model, optimizer and step (the batches are numbered, so the
  loader continues with the right one), so a resumed run continues exactly where it stopped;
- a JSONL log, one line per step, that the plots read;
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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from .artifacts import atomic_path, atomic_write_text
from .distributed import Distributed, mean_over_processes
from .errors import CourseError
from .model import GPT, GPTConfig

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    max_steps: int
    learning_rate: float
    warmup_steps: int
    grad_accum_steps: int = 1
    min_lr_ratio: float = 0.1        # the cosine ends at learning_rate * min_lr_ratio
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_interval: int = 100         # steps between evaluations (and checkpoints)
    eval_batches: int = 20
    sample_interval: int = 0         # steps between printed samples (0: none)
    seed: int = 1337
    precision: str = "auto"          # auto: bf16 from sm80, fp16 below, fp32 on CPU
    compile: bool = False            # torch.compile the model (minutes of compiling, then faster)


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warmup from 0, then a cosine from learning_rate down to the floor at max_steps."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    floor = config.learning_rate * config.min_lr_ratio
    return floor + 0.5 * (config.learning_rate - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: GPT, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with two groups: matrices decay, vectors (biases, LayerNorm gains) do not."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "wpe.weight"]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or n == "wpe.weight"]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # the fused kernel does the whole update in one launch on CUDA
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.betas,
                             fused=device.type == "cuda")


def precision_for(device: torch.device, setting: str = "auto") -> str:
    """bf16 from Ampere (sm80) on, fp16 below it (T4, V100), fp32 on CPU, unless `setting` says.

    `torch.cuda.is_bf16_supported()` is True on a T4 too, through slow emulation, so the
    compute capability decides.
    """
    if setting not in PRECISIONS:
        raise CourseError(f"precision={setting!r} is not one of {', '.join(PRECISIONS)}.")
    if setting != "auto":
        return setting
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class Checkpoints:
    """The files of one run: `last.pt`, `best.pt` and `log.jsonl` in one folder."""

    folder: Path

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    @property
    def log(self) -> Path:
        return self.folder / "log.jsonl"


def save_checkpoint(path: Path, model: GPT, optimizer, step: int, config: TrainConfig,
                    best_val_loss: float) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "model_config": asdict(model.config), "train_config": asdict(config),
             "best_val_loss": best_val_loss, "torch_rng": torch.get_rng_state()}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint's contents; tensors, numbers and strings only (`weights_only=True`)."""
    return torch.load(path, map_location=device, weights_only=True)


def load_model(path: Path, device: torch.device | str = "cpu") -> GPT:
    checkpoint = load_checkpoint(path, device)
    model = GPT(GPTConfig(**checkpoint["model_config"])).to(device)
    model.load_state_dict(checkpoint["model"])
    return model


@dataclass
class TrainResult:
    step: int
    best_val_loss: float
    seconds: float


def train(model: GPT, train_batches, val_batches_factory: Callable, config: TrainConfig,
          checkpoints: Checkpoints, bytes_per_token: float | None = None,
          sample: Callable[[GPT], str] | None = None, progress: bool = True,
          distributed: Distributed = Distributed()) -> TrainResult:
    """Train `model` until `config.max_steps`, resuming from `checkpoints.last` if it exists.

    `train_batches.next_batch()` gives (inputs, targets, loss_mask or None);
    `val_batches_factory()` gives a fresh validation loader, the same windows every time.
    Under torchrun every process calls this with its own loaders and `distributed`.
    """
    device = next(model.parameters()).device
    precision = precision_for(device, config.precision)
    micro_steps = micro_steps_per_process(config.grad_accum_steps, distributed)
    if device.type == "cuda":   # TF32: fp32 matmuls on tensor cores, ~10 bits of mantissa
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    optimizer = make_optimizer(model, config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    torch.manual_seed(config.seed)
    step, best_val_loss = 0, float("inf")
    if checkpoints.last.exists():
        step, best_val_loss = resume(checkpoints.last, model, optimizer)
        if distributed.is_main:
            keep_log_until(checkpoints.log, step)
    train_batches.seek(step * config.grad_accum_steps)   # batches drawn by all processes so far
    network = wrap_for_training(model, config, distributed)
    main = distributed.is_main
    if main:
        checkpoints.folder.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm
    bar = tqdm(total=config.max_steps, initial=step, desc="training", unit="step",
               disable=not (progress and main))
    started = time.perf_counter()
    with open(checkpoints.log, "a", encoding="utf-8") if main else contextlib.nullcontext() as log:
        while step < config.max_steps:
            lr = learning_rate_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loss = optimizer_step(network, optimizer, scaler, train_batches, micro_steps,
                                        config.grad_clip, device, precision)
            train_loss = mean_over_processes(train_loss, distributed, device)
            if not math.isfinite(train_loss):
                raise CourseError(f"The loss became {train_loss} at step {step}: lower the learning "
                                  f"rate; the last good checkpoint is kept in last.pt.")
            step += 1
            record = {"step": step, "train_loss": train_loss, "lr": lr,
                      "seconds": round(time.perf_counter() - started, 2)}
            if step % config.eval_interval == 0 or step == config.max_steps:
                record.update(evaluate(network, val_batches_factory(), config.eval_batches, device,
                                       precision, bytes_per_token, distributed))
                best_val_loss = min(best_val_loss, record["val_loss"])
                if main:
                    save_checkpoints(checkpoints, model, optimizer, step, config, record["val_loss"],
                                     best_val_loss)
                bar.set_postfix(train=f"{train_loss:.3f}", val=f"{record['val_loss']:.3f}")
            if main and sample is not None and config.sample_interval and step % config.sample_interval == 0:
                record["sample"] = sample(model)
                bar.write(f"step {step}: {record['sample']!r}")
            if main:
                log.write(json.dumps(record) + "\n")
                log.flush()
            bar.update()
    bar.close()
    return TrainResult(step, best_val_loss, time.perf_counter() - started)


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


def optimizer_step(network, optimizer, scaler, train_batches, micro_steps: int, grad_clip: float,
                   device, precision) -> float:
    """One optimizer step over `micro_steps` batches; returns their mean loss."""
    network.train()
    total = torch.zeros((), device=device)
    try:
        for micro in range(micro_steps):
            inputs, targets, loss_mask = train_batches.next_batch()
            # DDP averages gradients across processes during backward; once per step is enough
            last = micro == micro_steps - 1
            no_sync = network.no_sync() if isinstance(network, DistributedDataParallel) and not last \
                else contextlib.nullcontext()
            with no_sync:
                with autocast(device, precision):
                    _, loss = network(inputs, targets, loss_mask)
                # dividing by the number of micro-batches makes the summed gradients their mean
                scaler.scale(loss / micro_steps).backward()
            total += loss.detach()
    except torch.OutOfMemoryError:
        raise CourseError(f"The GPU ran out of memory with batch_size={train_batches.batch_size}: lower batch_size "
                          f"in the profile and raise grad_accum_steps to keep the tokens per step.") from None
    scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return total.item() / micro_steps   # one GPU synchronization per step, not per micro-batch


@torch.no_grad()
def evaluate(network, val_batches, batches: int, device, precision, bytes_per_token: float | None,
             distributed: Distributed = Distributed()) -> dict:
    """Mean validation loss over all processes; for pretraining also bits per byte."""
    network.eval()
    losses = []
    for _ in range(batches):
        inputs, targets, loss_mask = val_batches.next_batch()
        with autocast(device, precision):
            losses.append(network(inputs, targets, loss_mask)[1].item())
    network.train()
    val_loss = mean_over_processes(sum(losses) / len(losses), distributed, device)
    result = {"val_loss": val_loss}
    if bytes_per_token:
        # nats per token -> bits per token (/ ln 2) -> bits per byte (/ bytes per token)
        result["val_bpb"] = val_loss / math.log(2) / bytes_per_token
    return result


def save_checkpoints(checkpoints, model, optimizer, step, config, val_loss, best_val_loss) -> None:
    """Write last.pt, and best.pt when `val_loss` is the best so far."""
    save_checkpoint(checkpoints.last, model, optimizer, step, config, best_val_loss)
    if val_loss == best_val_loss:
        save_checkpoint(checkpoints.best, model, optimizer, step, config, best_val_loss)


def resume(path: Path, model: GPT, optimizer) -> tuple[int, float]:
    checkpoint = load_checkpoint(path, next(model.parameters()).device)
    if checkpoint["model_config"] != asdict(model.config):
        raise CourseError(f"{path.name} was trained with another model ({checkpoint['model_config']}): "
                          f"delete its folder to start over with this profile.")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["torch_rng"])
    return checkpoint["step"], checkpoint["best_val_loss"]


def keep_log_until(path: Path, step: int) -> None:
    """Drop the log lines of steps after `step`: a resumed run writes them again."""
    if path.exists():
        kept = [json.dumps(r) + "\n" for r in read_log(path) if r["step"] <= step]
        atomic_write_text(path, "".join(kept))


def read_log(path: Path) -> list[dict]:
    """The records of a run's log.jsonl, for plots; a half-written last line is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records

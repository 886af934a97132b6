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
- resuming from `last.pt`: model, optimizer, step and the data loader's random state, so a
  resumed run continues exactly where it stopped;
- a JSONL log, one line per step, that the plots read.

Run it from a notebook with `train(...)`, or as a script for pretraining:
``python -m python_files.train`` (the profile comes from LLM_PROFILE).
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

from .artifacts import atomic_path, atomic_write_text
from .errors import CourseError
from .model import GPT, GPTConfig


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


def precision_for(device: torch.device) -> str:
    """bf16 from Ampere (sm80) on, fp16 below it (T4, V100), fp32 on CPU.

    `torch.cuda.is_bf16_supported()` is True on a T4 too, through slow emulation, so the
    compute capability decides.
    """
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


def save_checkpoint(path: Path, model: GPT, optimizer, step: int, train_batches,
                    config: TrainConfig, best_val_loss: float) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "train_batches": train_batches.state_dict(), "model_config": asdict(model.config),
             "train_config": asdict(config), "best_val_loss": best_val_loss,
             "torch_rng": torch.get_rng_state()}
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
          sample: Callable[[GPT], str] | None = None, progress: bool = True) -> TrainResult:
    """Train `model` until `config.max_steps`, resuming from `checkpoints.last` if it exists.

    `train_batches.next_batch()` gives (inputs, targets, loss_mask or None);
    `val_batches_factory()` gives a fresh validation loader, the same windows every time.
    """
    device = next(model.parameters()).device
    precision = precision_for(device)
    optimizer = make_optimizer(model, config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    torch.manual_seed(config.seed)
    step, best_val_loss = 0, float("inf")
    if checkpoints.last.exists():
        step, best_val_loss = resume(checkpoints.last, model, optimizer, train_batches)
        keep_log_until(checkpoints.log, step)
    checkpoints.folder.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm
    bar = tqdm(total=config.max_steps, initial=step, desc="training", unit="step", disable=not progress)
    started = time.perf_counter()
    with open(checkpoints.log, "a", encoding="utf-8") as log:
        while step < config.max_steps:
            lr = learning_rate_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loss = optimizer_step(model, optimizer, scaler, train_batches, config, device, precision)
            if not math.isfinite(train_loss):
                raise CourseError(f"The loss became {train_loss} at step {step}: lower the learning "
                                  f"rate; the last good checkpoint is kept in last.pt.")
            step += 1
            record = {"step": step, "train_loss": train_loss, "lr": lr,
                      "seconds": round(time.perf_counter() - started, 2)}
            if step % config.eval_interval == 0 or step == config.max_steps:
                record.update(evaluate(model, val_batches_factory(), config.eval_batches, device,
                                       precision, bytes_per_token))
                best_val_loss = save_checkpoints(checkpoints, model, optimizer, step, train_batches,
                                                 config, record["val_loss"], best_val_loss)
                bar.set_postfix(train=f"{train_loss:.3f}", val=f"{record['val_loss']:.3f}")
            if sample is not None and config.sample_interval and step % config.sample_interval == 0:
                record["sample"] = sample(model)
                bar.write(f"step {step}: {record['sample']!r}")
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.update()
    bar.close()
    return TrainResult(step, best_val_loss, time.perf_counter() - started)


def optimizer_step(model, optimizer, scaler, train_batches, config, device, precision) -> float:
    """One optimizer step over `grad_accum_steps` batches; returns their mean loss."""
    model.train()
    total = 0.0
    for _ in range(config.grad_accum_steps):
        inputs, targets, loss_mask = train_batches.next_batch()
        with autocast(device, precision):
            _, loss = model(inputs, targets, loss_mask)
        # dividing by the number of micro-batches makes the summed gradients their mean
        scaler.scale(loss / config.grad_accum_steps).backward()
        total += loss.item()
    scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return total / config.grad_accum_steps


@torch.no_grad()
def evaluate(model: GPT, val_batches, batches: int, device, precision,
             bytes_per_token: float | None) -> dict:
    """Mean validation loss; for pretraining also bits per byte, comparable across tokenizers."""
    model.eval()
    losses = []
    for _ in range(batches):
        inputs, targets, loss_mask = val_batches.next_batch()
        with autocast(device, precision):
            losses.append(model(inputs, targets, loss_mask)[1].item())
    model.train()
    val_loss = sum(losses) / len(losses)
    result = {"val_loss": val_loss}
    if bytes_per_token:
        # nats per token -> bits per token (/ ln 2) -> bits per byte (/ bytes per token)
        result["val_bpb"] = val_loss / math.log(2) / bytes_per_token
    return result


def save_checkpoints(checkpoints, model, optimizer, step, train_batches, config, val_loss,
                     best_val_loss) -> float:
    """Write last.pt, and best.pt when `val_loss` is the best so far; returns the best loss."""
    best_val_loss = min(best_val_loss, val_loss)
    save_checkpoint(checkpoints.last, model, optimizer, step, train_batches, config, best_val_loss)
    if val_loss == best_val_loss:
        save_checkpoint(checkpoints.best, model, optimizer, step, train_batches, config, best_val_loss)
    return best_val_loss


def resume(path: Path, model: GPT, optimizer, train_batches) -> tuple[int, float]:
    checkpoint = load_checkpoint(path, next(model.parameters()).device)
    if checkpoint["model_config"] != asdict(model.config):
        raise CourseError(f"{path.name} was trained with another model ({checkpoint['model_config']}): "
                          f"delete its folder to start over with this profile.")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    train_batches.load_state_dict(checkpoint["train_batches"])
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

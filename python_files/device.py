"""Where the model runs and in which number format: one home for device and precision choices.

- the device: `LLM_DEVICE` when it is set (`cpu`, `cuda`, or `mps` for Apple's GPUs, which is
  only used when asked for: the course has not been measured on a Mac), else the CUDA GPU when
  there is one, else the CPU;
- the precision: bf16 from Ampere (sm80) on, fp16 with loss scaling below it (T4, V100), fp32 on
  CPU, unless the profile says otherwise;
- `torch.compile`: on with CUDA (except on Windows, which has no Triton), unless the profile says.
"""

from __future__ import annotations

import contextlib
import os
import platform

import torch

from .errors import CourseError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("cpu", "cuda", "mps")


def default_device() -> torch.device:
    """The device that `LLM_DEVICE` names, else CUDA when there is one, else the CPU."""
    name = os.environ.get("LLM_DEVICE", "").strip().lower()
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in DEVICES:
        raise CourseError(f"LLM_DEVICE={name!r} is not a device: use one of {', '.join(DEVICES)}, "
                          f"or unset it to let the course choose.")
    if not device_available(name):
        raise CourseError(f"LLM_DEVICE={name} but this machine has no {name} device that PyTorch can use: "
                          f"unset LLM_DEVICE, or install a PyTorch build with {name} support.")
    return torch.device(name)


def device_available(name: str) -> bool:
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return torch.backends.mps.is_available()
    return True


def compile_enabled(setting: bool | None, device: torch.device) -> bool:
    """`setting` when given; by default: with CUDA, not on Windows."""
    if setting is not None:
        return setting
    return device.type == "cuda" and platform.system() != "Windows"


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
    """The context in which forward passes run in `precision` (nothing to do for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_fast_matmuls(device: torch.device) -> None:
    """TF32 on CUDA: fp32 matmuls on tensor cores, with ~10 bits of mantissa (plenty here)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

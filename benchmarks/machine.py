"""What a benchmark ran on, printed with its figures: a CPU's speed depends on its instructions.

A laptop CPU with AVX2 and no AVX-512 BF16 or AMX computes bf16 by emulation, several times
slower than fp32; a server CPU with them computes bf16 faster than fp32. A table measured on
one says little about the other, so every benchmark prints this line.
"""

from __future__ import annotations

import os
import platform

import torch

# the instruction sets that decide how fast PyTorch's CPU kernels are, fp32 and bf16
FLAGS_THAT_MATTER = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpuinfo_field(name: str) -> str:
    """A field of the first CPU in /proc/cpuinfo (Linux); empty where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.split(":")[0].strip() == name), "")
    except OSError:
        return ""


def cpu_flags() -> set[str]:
    return set(cpuinfo_field("flags").split())


def describe_machine(device: torch.device | None = None) -> str:
    """One line: the GPU, or the CPU with its core count, relevant flags and PyTorch's kernels."""
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    flags = cpu_flags()
    present = [flag for flag in FLAGS_THAT_MATTER if flag in flags] or ["flags unknown"]
    return (f"CPU {cpuinfo_field('model name') or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} threads, {' '.join(present)}; PyTorch kernels: "
            f"{torch.backends.cpu.get_cpu_capability()} (torch {torch.__version__})")

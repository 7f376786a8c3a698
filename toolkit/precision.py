"""Which precision a step runs in, and the autocast context for it.

``auto`` means: bf16 on a GPU that has it; on a CPU, bf16 only for work without gradients (frozen feature encoding,
evaluation, prediction) and only where the CPU has bf16 matrix units (AMX or AVX512-BF16), since elsewhere bf16
matmuls are emulated and slower than fp32; fp32 otherwise. CPU training stays fp32 under ``auto``: bf16 training
on a CPU is not measured faster at the same accuracy. ``fp32`` forces fp32; ``bf16``/``fp16`` force autocast.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    """True where the CPU computes bf16 matmuls natively (AMX or AVX512-BF16)."""
    return any(flag in cpu_flags() for flag in CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: str | torch.device, training: bool = False) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``precision`` (one of ``PRECISIONS``) on ``device``; ``training`` is
    whether gradients flow (then ``auto`` is fp32 on a CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
    if precision != "auto":
        return precision
    device_type = torch.device(device).type
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device_type == "cpu" and not training and cpu_has_bf16():
        return "bf16"
    return "fp32"


def no_grad_precision(training_args) -> str:
    """The precision of a run's work without gradients (frozen encoding, evaluation): ``--precision`` resolved for
    the run's device; --bf16/--fp16 given directly count as that precision."""
    precision = training_args.precision
    if precision == "auto" and (training_args.bf16 or training_args.fp16):
        precision = "bf16" if training_args.bf16 else "fp16"
    return resolve_precision(precision, training_args.device)


def autocast(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for a resolved ``precision`` on ``device``; no context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r} is not resolved; pass it through resolve_precision() first.")
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])

"""The arithmetic a training step computes in: float32, or bfloat16 where the CPU computes it itself.

Intel's AMX and AVX-512 BF16 units run oneDNN's convolutions and matrix products in bfloat16 about
1.3x faster per training step on the network here (bench/bench_scale.py); on other CPUs bfloat16 is
emulated and slower than float32, so `auto` only picks it where the CPU has it. Keras's mixed
precision keeps the weights in float32, so what a training saves is the same either way.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16")


@functools.cache
def native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this machine's CPU computes in bfloat16 (AMX or AVX-512 BF16) and no GPU is used."""
    try:
        flags = Path(cpuinfo).read_text(errors="replace")
    except OSError:  # not Linux: no way to know, so no change
        return False
    if not re.search(r"\b(amx_bf16|avx512_bf16)\b", flags):
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def compute_precision(setting: str) -> str:
    """'float32' or 'bfloat16' for a precision setting ('auto': bfloat16 where the CPU has it)."""
    if setting not in PRECISIONS:
        raise ValueError(f"Unknown precision {setting!r}; choose one of {', '.join(PRECISIONS)}.")
    if setting == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return setting

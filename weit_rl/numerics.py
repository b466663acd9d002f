"""Pinned floating-point kernels, so that one configuration trains the same run on other x86-64
machines, not only on the one it first ran on (across CPU vendors this has not held so far:
docs/protocol.md, "Same command, same run").

torch and MKL choose their vector kernels once per process, by the CPU they find
(instruction set and vendor), and different kernels round differently. A template start
runs thousands of optimizer steps and a MuJoCo task is chaotic, so a difference in the last
bit grows into a different run: the headline's Hopper 64x3 seed-0 runs, trained on another
session's machine than seeds 1-4, started 3,506 and 3,333 from one configuration.
MKL's conditional numerical reproducibility (MKL_CBWR=COMPATIBLE) and torch's AVX2 kernels
exist on every x86-64 machine of the last decade; they cost ~20% of an initialization's CPU
time and no difference beyond measurement noise in training (docs/protocol.md, "Same command, same run", has the
measurements). CUDA runs are not covered.

The pinned MKL branch is per engine (weit_rl/policies/fast.py). The stock engine keeps COMPATIBLE, as every
run recorded before the fast engine computed. The fast engine takes MKL's AVX2 branch, which MKL
documents as reproducible on every processor with AVX2: on the small matrices of an RL update
COMPATIBLE is 2-3x slower (a 256x64 by 64x64 product: about 100 against 45 microseconds on the
development machine, reports/train_speed.md). `weit-rl train` pins its engine's branch; a compare or
study part records its branch when it starts and every run of the part computes with it (parts
recorded before that computed with COMPATIBLE, fast-engine parts included)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

X86 = platform.machine().lower() in ("x86_64", "amd64")
MKL_BRANCH = {"stock": "COMPATIBLE", "fast": "AVX2"}  # by engine


def pinned(branch: str) -> dict[str, str]:
    """The environment that pins torch's AVX2 kernels and MKL's `branch` (nothing off x86-64)."""
    return {"MKL_CBWR": branch, "ATEN_CPU_CAPABILITY": "avx2"} if X86 else {}


PINNED_BY_ENGINE = {engine: pinned(branch) for engine, branch in MKL_BRANCH.items()}
PINNED = PINNED_BY_ENGINE["stock"]  # commands that do not train (banks, evaluation) and the benchmarks


def pin_kernels(engine: str = "stock") -> None:
    """Call before torch is first used: both libraries read these once. A value the user
    set wins (e.g. ATEN_CPU_CAPABILITY=avx512 for speed, at the price of reruns elsewhere)."""
    for key, value in PINNED_BY_ENGINE[engine].items():
        os.environ.setdefault(key, value)


def kernel_setting() -> str:
    """The kernels this process computes with: results agree bit for bit only between equal settings."""
    import torch

    return f"torch {torch.backends.cpu.get_cpu_capability()}, MKL_CBWR={os.environ.get('MKL_CBWR', 'unset')}"


def kernels() -> str:
    """The kernels and the CPU, for a run's config.yaml: runs of one cell that name different
    kernel settings may differ in the last bits and beyond."""
    return f"{kernel_setting()}, CPU {cpu_model()}"


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()

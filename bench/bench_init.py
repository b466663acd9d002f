"""Benchmark, in one run: (a) building and initializing a PPO policy with
scratch, weit (its default recipe: scaler fitting, then full-weight distillation) and
distill, at each size; (b) PPO training speed of a weit-initialized policy against scratch
(after initialization both are plain SB3 MLPs: expected ratio ~1.0); (c) the start-up time
of `weit-rl --help`, `list` and `info`, each a fresh process.

CPU time is the primary measure: time.process_time with one torch thread (one core) for
(a) and (b), and the children's CPU time (resource.getrusage(RUSAGE_CHILDREN)) for (c). It
counts only the measured work, so it holds on a machine that other jobs keep busy; wall
time, reported beside it, is what a user waits and grows with the load.

    .venv/bin/python bench/bench_init.py                      # the full benchmark (~10 min idle)
    .venv/bin/python bench/bench_init.py --steps 2000 --repeats 1 --out /tmp/bench_init
Writes reports/bench_init.md (and .json)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from weit_rl.agents import RunConfig, build_model, init_sources, prepare
from weit_rl.artifacts.experts import default_bank
from weit_rl.config import parse_size
from weit_rl.envs import make_env
from weit_rl.numerics import pin_kernels

ROOT = Path(__file__).resolve().parents[1]
# The targets (docs/design.md, section 4), in CPU seconds of one idle core
STARTUP_TARGET = 1.0
INIT_TARGETS = {("weit", "small"): 3.0, ("weit", "256x3"): 10.0}


def clock() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def build(cfg: RunConfig):
    """The model, and the CPU and wall seconds it took to build (bank loading, env and
    initialization included)."""
    cpu, wall = clock()
    bank, obs_rms = init_sources(cfg)
    env = make_env(cfg.env, seed=cfg.seed, normalize=True, obs_rms=obs_rms)
    model = build_model(cfg, env, bank)
    cpu2, wall2 = clock()
    return model, cpu2 - cpu, wall2 - wall


def config(a: argparse.Namespace, bank: str, size: str, init: str, seed: int) -> RunConfig:
    return prepare(
        RunConfig(env=a.env, algo="ppo", size=size, init=init, bank=bank, seed=seed, device="cpu", progress_bar=False)
    )


def one_time_imports() -> dict[str, float]:
    """What the first optimizer step of a process costs once: torch.optim imports torch._dynamo
    there. A training run pays it at its first update whatever its initializer, so it is
    measured here, before the timed builds, and reported apart."""
    cpu, wall = clock()
    import torch._dynamo  # noqa: F401

    cpu2, wall2 = clock()
    return {"cpu_s": cpu2 - cpu, "wall_s": wall2 - wall}


def startup_command() -> list[str]:
    script = Path(sys.executable).parent / "weit-rl"  # the installed console script, as users run it
    return [str(script)] if script.exists() else [sys.executable, "-m", "weit_rl.cli"]


def time_startup(argv: list[str], repeats: int) -> dict[str, list[float]]:
    """CPU (the child's user + system) and wall seconds of `weit-rl ARGV`, each a fresh process."""
    out: dict[str, list[float]] = {"cpu_s": [], "wall_s": []}
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([*startup_command(), *argv], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"weit-rl {shlex.join(argv)} failed: {done.stderr}")
        out["cpu_s"].append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        out["wall_s"].append(wall)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    pin_kernels()  # before torch's first operation: the kernels `weit-rl` runs with (weit_rl/numerics.py)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--bank", default=None, help="PPO bank (default: the task's shipped bank)")
    p.add_argument("--sizes", default="small,256x3", help="comma-separated sizes to initialize")
    p.add_argument("--inits", default="scratch,weit,distill", help="comma-separated initializers")
    p.add_argument("--speed-size", default="small", help="the size whose training speed is compared")
    p.add_argument("--steps", type=int, default=20_000, help="PPO steps per training-speed run")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every measurement")
    p.add_argument("--startup-repeats", type=int, default=5, help="fresh processes per start-up command")
    p.add_argument("--out", default="reports/bench_init")
    a = p.parse_args()
    torch.set_num_threads(1)
    sizes, inits = a.sizes.split(","), a.inits.split(",")
    base = prepare(RunConfig(env=a.env, algo="ppo", device="cpu", progress_bar=False))
    bank = a.bank or default_bank(base.env, "ppo")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f}", flush=True)

    # (c) start-up: first, before this process loads the machine's caches with anything else
    startup_cmds = {
        "weit-rl --help": ["--help"],
        "weit-rl list": ["list"],
        f"weit-rl info {bank}": ["info", bank],
        "weit-rl train --help": ["train", "--help"],
        "weit-rl compare --help": ["compare", "--help"],
    }
    startup = {}
    for name, argv in startup_cmds.items():
        startup[name] = time_startup(argv, a.startup_repeats)
        print(f"{name}: cpu {median(startup[name]['cpu_s']):.2f}s, wall {median(startup[name]['wall_s']):.2f}s")

    # (a) initialization: warm the process first (torch.optim's one-time imports, MuJoCo, SB3's
    # first model, the first fitting step's code paths), so that no cell pays a first-call cost
    once = one_time_imports()
    build(config(a, bank, sizes[0], "scratch", 0))
    build(prepare(replace(config(a, bank, sizes[0], "weit", 0), fit_steps=2, finetune_steps=2)))
    init_rows: dict[str, dict[str, dict[str, list[float]]]] = {
        s: {i: {"cpu_s": [], "wall_s": []} for i in inits} for s in sizes
    }
    for r in range(a.repeats):  # interleaved, so drift on the machine hits every cell alike
        for size in sizes:
            for init in inits:
                _, cpu, wall = build(config(a, bank, size, init, r))
                init_rows[size][init]["cpu_s"].append(cpu)
                init_rows[size][init]["wall_s"].append(wall)
                print(f"repeat {r} {size} {init}: cpu {cpu:.2f}s, wall {wall:.2f}s", flush=True)

    # (b) training speed, weit against scratch
    speed = {i: {"steps_per_cpu_s": [], "steps_per_wall_s": []} for i in ("scratch", "weit")}
    for r in range(a.repeats):
        for init in speed:
            model, _, _ = build(config(a, bank, a.speed_size, init, r))
            cpu, wall = clock()
            model.learn(a.steps)
            cpu2, wall2 = clock()
            speed[init]["steps_per_cpu_s"].append(a.steps / (cpu2 - cpu))
            speed[init]["steps_per_wall_s"].append(a.steps / (wall2 - wall))
            print(f"repeat {r} train {init}: {speed[init]['steps_per_cpu_s'][-1]:.0f} steps per CPU s", flush=True)
    ratio = {k: median(speed["weit"][k]) / median(speed["scratch"][k]) for k in ("steps_per_cpu_s", "steps_per_wall_s")}

    command = "python " + shlex.join(sys.argv)
    machine = f"{cpu_model()}, {os.cpu_count()} cpus, torch {torch.__version__} with 1 thread"
    result = {
        "command": command,
        "env": base.env,
        "bank": bank,
        "sizes": {s: parse_size(s) for s in sizes},
        "steps": a.steps,
        "repeats": a.repeats,
        "startup_repeats": a.startup_repeats,
        "machine": machine,
        "load_average_at_start": load,
        "one_time_imports": once,
        "init": init_rows,
        "speed": speed,
        "speed_ratio_weit_over_scratch": ratio,
        "startup": startup,
        "targets": {"startup_cpu_s": STARTUP_TARGET} | {f"{i}_{s}_cpu_s": v for (i, s), v in INIT_TARGETS.items()},
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(report(result, sizes, inits))
    print(out.with_suffix(".md").read_text())


def _target(init: str, size: str, cpu: float) -> str:
    goal = INIT_TARGETS.get((init, size))
    return "" if goal is None else f"< {goal:g} ({'met' if cpu < goal else 'missed'})"


def report(r: dict, sizes: list[str], inits: list[str]) -> str:
    med = median
    lines = [
        f"# Initialization cost, training speed and start-up time ({r['env']}, PPO)",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}; load average {r['load_average_at_start'][0]:.2f} at the start; {r['created']}.",
        "",
        "**CPU time is the primary measure** (time.process_time of this process with one torch thread, "
        "i.e. one core; for the start-up commands, the child process's user + system time from "
        "getrusage(RUSAGE_CHILDREN)): it counts only the measured work, so it holds on a machine that "
        "other jobs keep busy. Wall time, beside it, is what a user waits; it grows with the load. "
        f"Medians of {r['repeats']} interleaved repeats ({r['startup_repeats']} fresh processes per "
        "start-up command); every value is in the JSON.",
        "",
        "## Start-up",
        "",
        "| command | CPU s | wall s | target (CPU s) |",
        "|---|---|---|---|",
    ]
    for name, t in r["startup"].items():
        cpu, met = med(t["cpu_s"]), "met" if med(t["cpu_s"]) < STARTUP_TARGET else "missed"
        lines.append(f"| `{name}` | {cpu:.2f} | {med(t['wall_s']):.2f} | < {STARTUP_TARGET:g} ({met}) |")
    lines += [
        "",
        "## Building and initializing a policy",
        "",
        "Bank loading, the training env and SB3's model construction included; weit's time is its "
        "default recipe (scaler fitting, then full-weight distillation steps), distill's the same number "
        "of full-weight steps from SB3's initialization.",
        "",
        "| size | init | CPU s | wall s | CPU s beyond scratch | target (CPU s) |",
        "|---|---|---|---|---|---|",
    ]
    for size in sizes:
        arch = "x".join(map(str, r["sizes"][size]))
        base = med(r["init"][size]["scratch"]["cpu_s"]) if "scratch" in r["init"][size] else None
        for init in inits:
            cell = r["init"][size][init]
            cpu = med(cell["cpu_s"])
            extra = "" if base is None or init == "scratch" else f"{cpu - base:.2f}"
            lines.append(
                f"| {size} ({arch}) | {init} | {cpu:.2f} | {med(cell['wall_s']):.2f} | {extra} | "
                f"{_target(init, size, cpu)} |"
            )
    once = r["one_time_imports"]
    lines += [
        "",
        f"Not included above: the first optimizer step of a process imports torch._dynamo (torch.optim "
        f"does), {once['cpu_s']:.2f} CPU s ({once['wall_s']:.2f} wall s) here, once per process. Every "
        "training run pays it at its first PPO update whatever its initializer, so the benchmark pays it "
        "before it measures.",
        "",
        "## Training speed",
        "",
        f"{r['steps']:,} PPO steps per run after building the policy.",
        "",
        "| init | steps per CPU s | steps per wall s |",
        "|---|---|---|",
    ]
    for init, s in r["speed"].items():
        lines.append(f"| {init} | {med(s['steps_per_cpu_s']):.0f} | {med(s['steps_per_wall_s']):.0f} |")
    ratio = r["speed_ratio_weit_over_scratch"]
    lines += [
        "",
        f"Speed ratio weit / scratch: **{ratio['steps_per_cpu_s']:.3f}** in CPU time "
        f"({ratio['steps_per_wall_s']:.3f} in wall time); 1.0 = no runtime cost.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Training speed: stock SB3 against the fast engine (weit_rl/policies/fast.py), SAC and PPO, HalfCheetah
and Hopper, sizes small and 256x3, in environment steps per CPU second; and the default recipe's
initialization time at size small (HalfCheetah PPO, weit) in the same run.

Usage: python bench/train_speed.py [--repeats 3] [--out reports/train_speed]

Each measurement runs in a fresh child process with one torch thread, because MKL reads its
kernel branch once per process and the engines pin different ones (weit_rl/numerics.py). Three
variants, each repeat training all of them in alternating order: `stock` (SB3's own classes with
the kernels every recorded run used, MKL COMPATIBLE: the baseline), `stock-avx2` (SB3's classes
with the fast engine's kernels: the kernels' share of the gain) and `fast` (the fast engine).
CPU time (time.process_time) of `model.learn` only: SAC after its learning_starts steps (every
measured step updates), PPO after a first rollout (which pays torch's one-time imports). Medians
of the repeats; every value is in the JSON.

The limit an update could reach is estimated from what the child measures on its own kernels: the
update's matrix products (FLOPs counted from the network sizes) at the rate one 256x64 by 64x64
product reaches, plus the update's count of tensor operations (torch.profiler) at the cost of one
tiny in-place operation."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {"stock": ("stock", "stock"), "stock-avx2": ("stock", "fast"), "fast": ("fast", "fast")}  # engine, kernels
CASES = [
    (algo, env, size) for algo in ("sac", "ppo") for env in ("HalfCheetah", "Hopper") for size in ("small", "256x3")
]
STEPS = {("sac", "small"): 1000, ("sac", "256x3"): 250, ("ppo", "small"): 3072, ("ppo", "256x3"): 1536}
SAC_WARMUP = 1000  # learning_starts: random actions, no update, not measured
TARGETS = {("sac", "small"): 2.5, ("ppo", "small"): 1.5, ("sac", "256x3"): 1.3, ("ppo", "256x3"): 1.2}


# --- child: one measurement ---------------------------------------------------------


def _config(algo: str, env: str, size: str, engine: str, init: str = "scratch"):
    from weit_rl.agents import RunConfig, prepare
    from weit_rl.agents.config import fill_sources

    hyper = {"learning_starts": SAC_WARMUP} if algo == "sac" else {}
    fresh = {"obs_stats": "fresh", "obs_update": "running"} if init == "scratch" else {}
    cfg = RunConfig(env=env, algo=algo, size=size, init=init, engine=engine, hyperparam_overrides=hyper, **fresh)
    return prepare(fill_sources(cfg))


def measure_training(algo: str, env: str, size: str, engine: str, steps: int) -> dict:
    from weit_rl.agents import new_model

    model = new_model(_config(algo, env, size, engine))
    model.learn(SAC_WARMUP + 50 if algo == "sac" else model.n_steps)  # one-time imports, a full buffer start
    start = time.process_time()
    model.learn(steps, reset_num_timesteps=False)
    cpu = time.process_time() - start
    return {"steps": steps, "cpu_s": cpu, "steps_per_cpu_s": steps / cpu}


def measure_init(engine: str) -> dict:
    """The default recipe's weit initialization at size small, HalfCheetah PPO (bench_init.py's
    measure), after a first optimizer step has paid torch's one-time imports."""
    import torch

    from weit_rl.agents import new_model

    warm = torch.nn.Linear(2, 2)
    torch.optim.Adam(warm.parameters()).step()
    start = time.process_time()
    new_model(_config("ppo", "HalfCheetah", "small", engine, init="weit"))
    return {"init_cpu_s": time.process_time() - start}


def measure_limit(env: str, hidden: list[int], batch: int = 256) -> dict:
    """What an SAC update's arithmetic and operation count cost on this process's kernels."""
    import gymnasium as gym
    import torch

    from weit_rl.policies.fast import FastSAC

    x, layer = torch.randn(batch, 64), torch.nn.Linear(64, 64)
    tiny = torch.zeros(64)
    linear_s = _best_time(lambda: layer(x))
    op_s = _best_time(lambda: tiny.add_(1.0))
    gym_env = gym.make(f"{env}-v5")
    obs, act = gym_env.observation_space.shape[0], gym_env.action_space.shape[0]
    model = FastSAC("MlpPolicy", gym_env, learning_starts=batch, batch_size=batch, policy_kwargs={"net_arch": hidden})
    model.learn(batch + 10)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model.train(gradient_steps=10, batch_size=batch)
    # operations the update dispatches, forward and backward: aten calls not inside another aten call
    top = [e for e in prof.events() if e.name.startswith("aten::")]
    ops = sum(1 for e in top if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")) / 10
    flops = sac_update_flops(obs, act, hidden, batch)
    rate = 2 * batch * 64 * 64 / linear_s
    return {
        "linear_256x64x64_us": linear_s * 1e6,
        "gflops": rate / 1e9,
        "tiny_op_us": op_s * 1e6,
        "update_mflop": flops / 1e6,
        "ops_per_update": ops,
        "limit_ms": (flops / rate + ops * op_s) * 1e3,
    }


def sac_update_flops(obs: int, act: int, hidden: list[int], batch: int) -> float:
    """Matrix-product FLOPs of one SAC update: the actor on the batch and on the next
    observations (forward, and backward of the first: weights and inputs), both critics on the
    target, on the batch (forward and backward) and on the actor's actions (forward, and backward
    to the actions only)."""

    def net(inputs: int, outputs: int) -> float:
        dims = [inputs, *hidden, outputs]
        return sum(2.0 * batch * a * b for a, b in zip(dims, dims[1:]))

    actor, critic = net(obs, 2 * act), net(obs + act, 1)
    return 2 * actor + 2 * actor + 2 * (critic + critic + 2 * critic + critic + critic)


def _best_time(fn, n: int = 2000) -> float:
    for _ in range(100):
        fn()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best


def child(spec: dict) -> dict:
    import torch

    from weit_rl.numerics import kernel_setting, pin_kernels

    pin_kernels(spec["kernels"])  # the parent set them already; here for a child started by hand
    torch.set_num_threads(1)
    if spec["kind"] == "train":
        out = measure_training(spec["algo"], spec["env"], spec["size"], spec["engine"], spec["steps"])
    elif spec["kind"] == "init":
        out = measure_init(spec["engine"])
    else:
        out = measure_limit(spec["env"], spec["hidden"])
    return out | {"kernels": kernel_setting()}


# --- parent: the schedule and the report --------------------------------------------


def run_child(spec: dict) -> dict:
    from weit_rl.numerics import PINNED_BY_ENGINE

    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ATEN_CPU_CAPABILITY")}
    env |= PINNED_BY_ENGINE[spec["kernels"]] | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def schedule(repeats: int) -> list[dict]:
    specs = []
    for rep in range(repeats):
        order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
        for algo, env, size in CASES:
            for variant in order:
                engine, kernels = VARIANTS[variant]
                steps = STEPS[(algo, size)]
                specs.append(
                    dict(
                        kind="train",
                        rep=rep,
                        variant=variant,
                        engine=engine,
                        kernels=kernels,
                        algo=algo,
                        env=env,
                        size=size,
                        steps=steps,
                    )
                )
        for variant in ("stock", "fast") if rep % 2 == 0 else ("fast", "stock"):
            engine, kernels = VARIANTS[variant]
            specs.append(dict(kind="init", rep=rep, variant=variant, engine=engine, kernels=kernels))
    for variant in ("stock", "fast"):
        specs.append(
            dict(
                kind="limit",
                rep=0,
                variant=variant,
                engine=variant,
                kernels=variant,
                env="HalfCheetah",
                hidden=[64, 64],
            )
        )
    return specs


def summarize(results: list[dict]) -> dict:
    def med(kind: str, key: str, **match) -> float:
        vals = [r[key] for r in results if r["kind"] == kind and all(r[k] == v for k, v in match.items())]
        return statistics.median(vals)

    rows = []
    for algo, env, size in CASES:
        speed = {v: med("train", "steps_per_cpu_s", algo=algo, env=env, size=size, variant=v) for v in VARIANTS}
        by_rep = {
            (r["rep"], r["variant"]): r["steps_per_cpu_s"]
            for r in results
            if r["kind"] == "train" and (r["algo"], r["env"], r["size"]) == (algo, env, size)
        }
        reps = sorted({rep for rep, _ in by_rep})
        per_repeat = [by_rep[(rep, "fast")] / by_rep[(rep, "stock")] for rep in reps]
        rows.append(
            {
                "algo": algo,
                "env": env,
                "size": size,
                **speed,
                "speedup": speed["fast"] / speed["stock"],
                "speedup_same_kernels": speed["fast"] / speed["stock-avx2"],
                "speedup_per_repeat": per_repeat,
                "target": TARGETS[(algo, size)],
            }
        )
    init = {v: med("init", "init_cpu_s", variant=v) for v in ("stock", "fast")}
    limit = {r["variant"]: r for r in results if r["kind"] == "limit"}
    return {"rows": rows, "init_cpu_s": init, "limit": limit}


def report(summary: dict, meta: dict) -> str:
    lines = [
        "# Training speed: stock SB3 and the fast engine",
        "",
        f"Command: `python bench/train_speed.py --repeats {meta['repeats']}`  ",
        f"Machine: {meta['machine']}; {meta['date']}; load average {meta['load']:.2f} at the start.",
        "",
        "Environment steps per CPU second of `model.learn` (one torch thread), medians of the repeats. Each "
        "repeat trains every variant of every case, in alternating order; each measurement runs in a fresh "
        "child process, since MKL reads its kernel branch once per process and the engines pin different ones; "
        "SAC measured after its warm-up (every step updates), PPO "
        "after a first rollout. `stock`: SB3's own classes with the kernels every recorded run used (MKL "
        "COMPATIBLE); `stock-avx2`: SB3's classes on the fast engine's kernels (MKL AVX2); `fast`: the "
        "fast engine (weit_rl/policies/fast.py) on its kernels. speed-up: fast / stock; same kernels: fast / "
        "stock-avx2 (the code's share alone).",
        "",
        "| algo | task | size | stock | stock-avx2 | fast | speed-up | per repeat | same kernels | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        met = "met" if r["speedup"] >= r["target"] else "missed"
        lines.append(
            f"| {r['algo'].upper()} | {r['env']} | {r['size']} | {r['stock']:.0f} | {r['stock-avx2']:.0f} | "
            f"{r['fast']:.0f} | {r['speedup']:.2f}x | {', '.join(f'{x:.2f}' for x in r['speedup_per_repeat'])} | "
            f"{r['speedup_same_kernels']:.2f}x | "
            f"{r['target']}x ({met}) |"
        )
    met = [r for r in summary["rows"] if r["speedup"] >= r["target"]]
    missed = [r for r in summary["rows"] if r["speedup"] < r["target"]]
    spread = [x for r in summary["rows"] for x in r["speedup_per_repeat"]]
    fast_small = next(r for r in summary["rows"] if (r["algo"], r["env"], r["size"]) == ("sac", "HalfCheetah", "small"))
    limit = summary["limit"]["fast"]["limit_ms"]

    def names(rows: list[dict]) -> str:
        return ", ".join(f"{r['algo'].upper()} {r['env']} {r['size']} {r['speedup']:.2f}x" for r in rows) or "none"

    lines += [
        "",
        f"Targets met ({len(met)} of {len(summary['rows'])}): {names(met)}. Missed: {names(missed)}. The runs "
        f"shared the machine with other jobs (load average {meta['load']:.2f} at the start); a case's per-repeat "
        f"speed-ups range from {min(spread):.2f}x to {max(spread):.2f}x across the table, so medians of 3 "
        "repeats are coarse. The fast engine's SAC step at HalfCheetah small takes "
        f"{1000 / fast_small['fast']:.1f} CPU ms (update, action and environment step), against an estimated "
        f"floor of {limit:.2f} ms for the update alone at its kernels (below).",
    ]
    init = summary["init_cpu_s"]
    lines += [
        "",
        "## Initialization (default recipe, weit, size small, HalfCheetah PPO)",
        "",
        "CPU seconds of building and initializing the policy (bank, env and model included), after a "
        "first optimizer step paid torch's one-time imports, as bench/bench_init.py measures it.",
        "",
        "| kernels | CPU s | target |",
        "|---|---|---|",
        f"| stock (MKL COMPATIBLE) | {init['stock']:.2f} | < 3 ({'met' if init['stock'] < 3 else 'missed'}) |",
        f"| fast (MKL AVX2) | {init['fast']:.2f} | < 3 ({'met' if init['fast'] < 3 else 'missed'}) |",
        "",
        "## How far from the limit (SAC, HalfCheetah, 64x64, batch 256)",
        "",
        "| kernels | 256x64x64 product | GFLOP/s | tiny op | MFLOP per update | ops per update | limit per update |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, lim in summary["limit"].items():
        lines.append(
            f"| {variant} | {lim['linear_256x64x64_us']:.0f} us | {lim['gflops']:.0f} | {lim['tiny_op_us']:.1f} us | "
            f"{lim['update_mflop']:.1f} | {lim['ops_per_update']:.0f} | {lim['limit_ms']:.2f} ms |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="reports/train_speed")
    p.add_argument("--report-only", action="store_true", help="rewrite the page from the JSON of the last run")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(json.loads(a.child))))
        return
    if a.report_only:
        saved = json.loads(Path(a.out + ".json").read_text())
        Path(a.out + ".md").write_text(report(summarize(saved["results"]), saved["meta"]))
        return
    from weit_rl.numerics import cpu_model

    meta = {
        "repeats": a.repeats,
        "machine": f"{cpu_model()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "load": os.getloadavg()[0],
    }
    results = []
    for spec in schedule(a.repeats):
        results.append(spec | run_child(spec))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    summary = summarize(results)
    Path(a.out + ".json").write_text(json.dumps({"meta": meta, "summary": summary, "results": results}, indent=1))
    Path(a.out + ".md").write_text(report(summary, meta))
    print(report(summary, meta))


if __name__ == "__main__":
    main()

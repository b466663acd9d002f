"""Which template count K and block size to default to: learn templates with each
setting on the same expert data, fit scalers for a few target sizes on held-out
calibration data, and report the distillation loss on unseen expert states.

    .venv/bin/python bench/template_settings.py --env HalfCheetah
Writes reports/template_settings.md (and .json)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from weit_rl.artifacts.experts import expert_dir
from weit_rl.config import load_yaml, parse_size
from weit_rl.envs import resolve_task
from weit_rl.numerics import pin_kernels
from weit_rl.policies.sb3 import activation_name, load_model, record_expert_data
from weit_rl.templates.fit import evaluate_loss, fit_scalers, learn_templates

SETTINGS = [(8, 16), (16, 16), (32, 16), (16, 8), (16, 32), (8, 32)]
TARGETS = ["tiny", "small", "medium", "100x2", "64x4"]


def main() -> None:
    pin_kernels()  # before torch's first operation: the kernels `weit-rl` runs with (weit_rl/numerics.py)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--steps", type=int, default=1_500)
    p.add_argument("--calib", type=int, default=1_000)
    p.add_argument("--out", default="reports/template_settings")
    a = p.parse_args()
    torch.set_num_threads(1)
    env_id = resolve_task(a.env)
    model, norm = load_model(expert_dir(env_id, "ppo"), "ppo")
    act = activation_name(model.policy)
    data = record_expert_data(model, norm, env_id, a.samples + a.calib + 5_000, seed=1)
    train, calib = data.subset(a.samples), data.batch(torch.arange(a.samples, a.samples + a.calib))
    held_out = data.batch(torch.arange(a.samples + a.calib, len(data)))
    aux = load_yaml("templates.yaml")["aux_sizes"]
    rows = []
    for k, block in SETTINGS:
        start = time.time()
        actor_t, critic_t, _, _ = learn_templates(train, aux, k, block, act, a.steps, progress=False)
        row = {
            "n_templates": k,
            "block": block,
            "learn_s": round(time.time() - start, 1),
            "template_params": sum(t.numel() for t in [*actor_t.parameters(), *critic_t.parameters()]),
        }
        for size in TARGETS:
            nets, _ = fit_scalers(actor_t, critic_t, parse_size(size), calib, act)
            row[size] = evaluate_loss(nets, held_out)
            row[f"{size}_scalers"] = nets.actor.scalers.count() + nets.critics[0].scalers.count()
        rows.append(row)
        print(row, flush=True)
    command = "python " + shlex.join(sys.argv)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "rows": rows}, indent=2))
    lines = [
        f"# Template count and block size ({env_id}, PPO expert)\n",
        f"Held-out distillation loss (actor MSE + critic MSE in units of value std) after fitting scalers "
        f"(300 steps, {a.calib} calibration transitions) on templates learned for {a.steps} steps from "
        f"{a.samples} expert transitions. Lower is better. Scaler counts (actor + critic) in brackets.\n",
        f"Command: `{command}`\n",
        "| K | block | template params | learn s | " + " | ".join(TARGETS) + " |",
        "|---|---|---|---|" + "---|" * len(TARGETS),
    ]
    for r in rows:
        cells = " | ".join(f"{r[s]:.3f} ({r[f'{s}_scalers']})" for s in TARGETS)
        lines.append(f"| {r['n_templates']} | {r['block']} | {r['template_params']} | {r['learn_s']} | {cells} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()

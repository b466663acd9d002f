"""Does one configuration start the same run on every machine? A probe to run once per machine.

The keep study's Hopper PPO development runs of seed 100 started at 3,280.4 on an AMD EPYC and at
2,722.8 on an Intel Xeon, with the same configuration and pinned kernels (MKL COMPATIBLE, torch
AVX2). This probe builds that run's initial policy from its recorded config.yaml as `weit-rl
train` does and records, per machine: a hash of the initial weights and the step-0
returns. Equal hashes with unequal returns point at the simulation or evaluation; unequal hashes
at the initialization. Appends one row to reports/reproducibility/probe.csv (committed, so rows
from the machines of later sessions add up).

Usage: python bench/repro_probe.py"""

from __future__ import annotations

import csv
import hashlib
import tempfile
import time
from pathlib import Path

import yaml

from weit_rl.numerics import cpu_model, kernel_setting, pin_kernels

OUT = Path("reports/reproducibility/probe.csv")
RUN = Path("reports/keep/dev/runs/Hopper/ppo-small-ppo_old-s100")  # recorded on the AMD EPYC: 3,280.4 at step 0


def main() -> None:
    pin_kernels()  # stock: the kernels the keep/dev part computes with (COMPATIBLE)
    import torch

    from weit_rl.agents import RunConfig, train
    from weit_rl.provenance import code_version

    torch.set_num_threads(1)
    recorded = yaml.safe_load((RUN / "config.yaml").read_text())
    fields = {k: v for k, v in recorded.items() if k not in ("code_version", "kernels")}
    with tempfile.TemporaryDirectory() as tmp:  # one rollout: its step-0 evaluation is the recorded run's
        run = train(RunConfig(**fields | {"steps": 1, "run_dir": tmp, "progress_bar": False}))
        initial = torch.load(run / "initial_policy.pt", weights_only=False)["policy"]
        weights = b"".join(v.cpu().numpy().tobytes() for v in initial.values())
        with (run / "evaluations.csv").open() as f:
            step0 = next(csv.DictReader(f))
    returns = [float(r) for r in step0["returns"].split()]
    row = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "kernels": kernel_setting(),
        "code": code_version(),
        "init_sha256": hashlib.sha256(weights).hexdigest()[:16],
        "step0_mean": f"{float(step0['mean_return']):.4f}",
        "recorded_step0_mean": next(csv.DictReader((RUN / "evaluations.csv").open()))["mean_return"],
        "first_episode": f"{returns[0]:.4f}",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    new = not OUT.exists()
    with OUT.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(row)


if __name__ == "__main__":
    main()

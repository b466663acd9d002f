"""Does one configuration start the same run on every machine? A probe to run once per machine.

The keep study's Hopper PPO development runs of seed 100 started at 3,280.4 on an AMD EPYC and at
2,722.8 on an Intel Xeon, with the same configuration and pinned kernels (MKL COMPATIBLE, torch
AVX2). This probe builds that run's initial policy from its recorded config.yaml as `weit-rl
train` does and records, per machine, one row of reports/reproducibility/probe.csv (committed, so
rows from the machines of later sessions add up; every value a hash is the first 16 hex digits of
the sha256 of the tensors' bytes):

- the initial weights (init_sha256) and the step-0 returns. Equal hashes with unequal returns
  point at the simulation or evaluation; unequal hashes at the initialization;
- the stages of that initialization (init_*, in the order they run; hooks set in this script
  only, the library runs unchanged): SB3's freshly built policy, the calibration data, the
  Kronecker networks before and after scaler fitting (with the first loss and a hash of all
  losses), the weights after the full-weight fine-tuning (its first loss, a hash of its losses)
  and the policy once they are written into it (the last equals init_sha256). Between two
  machines, the first stage whose value differs is where the initialization diverges;
- kernel probes independent of weit_rl (k_*), each on fixed float32 inputs drawn from
  torch.Generator().manual_seed(0): matrix products, elementwise functions, a reduction, QR,
  orthogonal init, one backward and one Adam step (default and fused) of a small MLP;
- torch's build: version, BLAS, MKL version, and the CPU capability torch computes with.

Earlier rows lack the later columns: the file is rewritten with those cells empty.

Usage: OMP_NUM_THREADS=1 python bench/repro_probe.py"""

from __future__ import annotations

import csv
import hashlib
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from weit_rl.numerics import cpu_model, kernel_setting, pin_kernels

OUT = Path("reports/reproducibility/probe.csv")
# Trained on an Intel Xeon (2,722.8 at step 0); its twin trained on an AMD EPYC (3,280.4) is in
# reports/keep/dev/other-cpu/Hopper/.
RUN = Path("reports/keep/dev/runs/Hopper/ppo-small-ppo_old-s100")


def digest(*parts: Any) -> str:
    """sha256 of the bytes of every tensor in `parts` (nested dicts, lists, tuples; None skipped)."""
    import torch

    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            h.update(x.detach().cpu().numpy().tobytes())
        elif isinstance(x, dict):
            for v in x.values():
                feed(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                feed(v)
        elif x is not None:
            raise TypeError(f"cannot hash {type(x).__name__}")

    feed(parts)
    return h.hexdigest()[:16]


def traced_init(stages: dict[str, str]) -> None:
    """Wrap the functions weit_rl.policies.init.weit calls so that each stage's result lands in `stages`."""
    import torch

    import weit_rl.policies.init
    import weit_rl.templates.fit

    read_weights, write_weights, train_nets = (
        weit_rl.policies.init.read_weights,
        weit_rl.policies.init.write_weights,
        weit_rl.templates.fit.train_nets,
    )
    names = iter(["scalers", "finetune"])  # weit's two train_nets calls: fit_scalers, then _distilled

    def traced_read(policy: Any) -> Any:  # weit's first call: SB3's fresh policy
        stages.setdefault("init_sb3", digest(policy.state_dict()))
        return read_weights(policy)

    def traced_train(nets: list, params: list, data: Any, *args: Any, **kwargs: Any) -> list[float]:
        name = next(names)
        if name == "scalers":
            stages["init_calib"] = digest(data.obs, data.actor_target, data.critic_target, data.actions)
            stages["init_scalers_start"] = digest([n.materialize() for n in nets])
        losses = train_nets(nets, params, data, *args, **kwargs)
        stages[f"init_{name}_loss1"] = repr(losses[0])
        stages[f"init_{name}_losses"] = digest(torch.tensor(losses, dtype=torch.float64))
        stages["init_scalers" if name == "scalers" else "init_finetuned"] = digest([n.materialize() for n in nets])
        return losses

    def traced_write(policy: Any, weights: dict) -> None:
        write_weights(policy, weights)
        stages["init_written"] = digest(policy.state_dict())

    weit_rl.policies.init.read_weights, weit_rl.policies.init.write_weights = traced_read, traced_write
    weit_rl.policies.init.train_nets = weit_rl.templates.fit.train_nets = traced_train


def kernel_probes() -> dict[str, str]:
    """Hashes of torch kernels on fixed inputs: which of them round differently between machines."""
    import torch
    import torch.nn.functional as F

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=torch.Generator().manual_seed(0))

    a, b, bias = randn(256, 64), randn(64, 64), randn(64)
    x17, w17 = randn(256, 17), randn(64, 17)
    v = randn(10_000)
    q, r = torch.linalg.qr(randn(64, 64))
    ortho = torch.empty(64, 17)
    torch.nn.init.orthogonal_(ortho, generator=torch.Generator().manual_seed(0))
    out = {
        "k_rng": digest(v),
        "k_mm": digest(torch.mm(a, b)),
        "k_linear": digest(F.linear(x17, w17, bias)),
        "k_addmm": digest(torch.addmm(bias, a, b)),
        "k_bmm": digest(torch.bmm(randn(8, 256, 64), randn(8, 64, 64))),
        "k_tanh": digest(torch.tanh(v)),
        "k_exp": digest(torch.exp(v)),
        "k_log": digest(torch.log(v.abs() + 1e-3)),
        "k_softplus": digest(F.softplus(v)),
        "k_sum": digest(randn(100_000).sum()),
        "k_qr": digest(q, r),
        "k_orthogonal": digest(ortho),
    }

    # A 17-64-64-6 ReLU MLP (Hopper's sizes), its MSE loss on a fixed batch, the gradients, one Adam step.
    def mlp_step(**adam: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        sizes = [17, 64, 64, 6]
        params = [t.mul(0.1).requires_grad_() for i, o in zip(sizes, sizes[1:]) for t in (randn(o, i), randn(o))]
        h = x17
        for k in range(0, len(params), 2):
            h = F.linear(h, params[k], params[k + 1])
            h = torch.relu(h) if k < len(params) - 2 else h
        (h - randn(256, 6)).pow(2).mean().backward()
        grads = [p.grad.clone() for p in params if p.grad is not None]
        torch.optim.Adam(params, lr=1e-3, **adam).step()
        return grads, [p.detach() for p in params]

    grads, stepped = mlp_step()
    out |= {"k_grad": digest(grads), "k_adam": digest(stepped), "k_adam_fused": digest(mlp_step(fused=True)[1])}
    return out


def torch_build() -> dict[str, str]:
    import torch

    show, parallel = torch.__config__.show(), torch.__config__.parallel_info()
    blas = re.search(r"BLAS_INFO=(\w+)", show)
    mkl = re.search(r"Math Kernel Library Version (.+?) for ", parallel)
    return {
        "torch": torch.__version__,
        "blas": blas.group(1) if blas else "unknown",
        "mkl_version": mkl.group(1) if mkl else "none",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def main() -> None:
    pin_kernels()  # stock: the kernels the keep/dev part computes with (COMPATIBLE)
    import torch

    from weit_rl.agents import RunConfig, train
    from weit_rl.artifacts.provenance import code_version

    torch.set_num_threads(1)
    stages: dict[str, str] = {}
    traced_init(stages)
    recorded = yaml.safe_load((RUN / "config.yaml").read_text())
    fields = {k: v for k, v in recorded.items() if k not in ("code_version", "kernels")}
    with tempfile.TemporaryDirectory() as tmp:  # one rollout: its step-0 evaluation is the recorded run's
        run = train(RunConfig(**fields | {"steps": 1, "run_dir": tmp, "progress_bar": False}))
        initial = torch.load(run / "initial_policy.pt", weights_only=False)["policy"]
        with (run / "evaluations.csv").open() as f:
            step0 = next(csv.DictReader(f))
    returns = [float(r) for r in step0["returns"].split()]
    row = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "kernels": kernel_setting(),
        "code": code_version(),
        "init_sha256": digest(initial),
        "step0_mean": f"{float(step0['mean_return']):.4f}",
        "recorded_step0_mean": next(csv.DictReader((RUN / "evaluations.csv").open()))["mean_return"],
        "first_episode": f"{returns[0]:.4f}",
        **torch_build(),
        **stages,
        **kernel_probes(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    rows, header = [], list(row)
    if OUT.exists():
        with OUT.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or []) + [k for k in row if k not in (reader.fieldnames or [])]
    with OUT.open("w", newline="") as f:  # rewritten: earlier rows get empty cells for newer columns
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows([*rows, row])
    for key, value in row.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

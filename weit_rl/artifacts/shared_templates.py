"""`weit-rl templates --shared` and `--hidden-from`: template learning across tasks. Observation
and action sizes differ per task, so each task keeps its own input and output templates; the
hidden (p x p) templates are shared, to test WAVE's claim that template knowledge is
task-agnostic. Either they are learned jointly on every task's expert data, or they are taken,
frozen, from a bank learned on other tasks (a held-out task). Each task gets an ordinary bank
file (weit_rl.artifacts.bank), whose manifest field `shared_hidden` says with which tasks."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from torch import Tensor

from weit_rl import UserError
from weit_rl.artifacts.bank import Bank, load_bank
from weit_rl.artifacts.build_bank import open_expert, refuse_existing, write_bank
from weit_rl.artifacts.experts import bank_path, default_expert
from weit_rl.config import check_algo, load_yaml
from weit_rl.envs import resolve_task
from weit_rl.policies.sb3 import record_expert_data
from weit_rl.policies.teacher import teacher_scalers
from weit_rl.templates.fit import learn_shared_templates
from weit_rl.templates.kron import TemplateSet
from weit_rl.templates.standardize import Standardization


def hidden_templates(bank: Bank) -> dict[str, tuple[Tensor, Tensor]]:
    return {"actor": (bank.actor.hid_w, bank.actor.hid_b), "critic": (bank.critic.hid_w, bank.critic.hid_b)}


def hidden_sha256(actor_t: TemplateSet, critic_t: TemplateSet) -> str:
    """Checksum of the hidden templates alone: equal across the banks that share them."""
    h = hashlib.sha256()
    for t in (actor_t.hid_w, actor_t.hid_b, critic_t.hid_w, critic_t.hid_b):
        h.update(t.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def build_shared_banks(
    envs: list[str],
    algo: str,
    out_dir: str | Path,
    experts: list[str | None] | None = None,
    samples: int = 50_000,
    calib: int = 5_000,
    steps: int = 3_000,
    n_templates: int | None = None,
    block: int | None = None,
    seed: int = 0,
    command: str = "",
    aux_sizes: list[list[int]] | None = None,
    hidden_from: str | None = None,
    replace: bool = False,
) -> list[Path]:
    """One bank per task in `out_dir` (<Env>-<algo>.safetensors). Without `hidden_from`, the
    tasks' templates are learned jointly (fit.learn_shared_templates), each task on its
    `samples` transitions and with every auxiliary size, the hidden templates shared. With
    `hidden_from` (a bank), its hidden templates are kept frozen, bit for bit, and only each
    task's input/output templates and auxiliary scalers are learned, on the task's calibration
    set alone (the first `calib` transitions, which the bank also stores): a task held out of
    template learning gets no more data than scaler fitting does."""
    env_ids, algo = [resolve_task(e) for e in envs], check_algo(algo)
    if not env_ids or len(set(env_ids)) != len(env_ids):
        raise UserError(f"tasks must be distinct and at least one, got {', '.join(envs) or 'none'}")
    if calib > samples:
        raise UserError(f"--calib ({calib}) cannot exceed --samples ({samples})")
    experts = experts or [None] * len(env_ids)
    if len(experts) != len(env_ids):
        raise UserError(f"{len(experts)} experts for {len(env_ids)} tasks: pass one expert per task, in order")
    outs = [Path(out_dir) / bank_path(e, algo).name for e in env_ids]
    for out in outs:
        refuse_existing(out, replace, elsewhere="another --out-dir DIR")
    defaults = load_yaml("templates.yaml")
    aux_sizes = aux_sizes or defaults["aux_sizes"]
    srcs = [open_expert(x or default_expert(e, algo), e, algo) for x, e in zip(experts, env_ids)]
    activation = srcs[0].activation
    if any(s.activation != activation for s in srcs):
        raise UserError(
            f"shared templates need one activation, but the experts use "
            f"{', '.join(f'{s.env_id}: {s.activation}' for s in srcs)}"
        )
    hidden, source = None, None
    if hidden_from is not None:
        bank = load_bank(hidden_from)
        m = bank.manifest
        if (m["algo"], m["activation"]) != (algo, activation):
            raise UserError(
                f"bank {hidden_from} holds {m['algo']} templates for {m['activation']} networks, not "
                f"{algo} for {activation}: pass a bank learned with the same algorithm and activation"
            )
        if (n_templates or m["n_templates"], block or m["block"]) != (m["n_templates"], m["block"]):
            raise UserError(
                f"bank {hidden_from} has {m['n_templates']} templates of {m['block']}x{m['block']}: "
                "leave --templates and --block out with --hidden-from"
            )
        n_templates, block, hidden = m["n_templates"], m["block"], hidden_templates(bank)
        learned_on = m.get("shared_hidden", {}).get("tasks", [m["task"]])
        source = {"path": str(hidden_from), "tensor_sha256": m["tensor_sha256"]}
    else:
        n_templates, block = n_templates or defaults["n_templates"], block or defaults["block"]
        learned_on = env_ids
    start = time.time()
    data = [record_expert_data(s.model, s.norm, s.env_id, samples, seed=seed) for s in srcs]
    fit_data = data if hidden is None else [d.subset(calib) for d in data]
    units = [Standardization.of(d) for d in fit_data]  # per task, from the data it is fitted on
    sets, losses, aux = learn_shared_templates(
        [u.apply(d) for u, d in zip(units, fit_data)],
        aux_sizes,
        n_templates,
        block,
        activation,
        steps,
        lr=defaults["lr"],
        batch_size=defaults["batch_size"],
        seed=seed,
        hidden=hidden,
    )
    largest = max(range(len(aux_sizes)), key=lambda i: sum(p.numel() for p in aux[0][i].actor.scalers.parameters()))
    info = {
        "pretraining": {"constraint": "none", "templates": "learned post hoc (WAVE), hidden templates shared"},
        "n_templates": n_templates,
        "block": block,
        "aux_sizes": aux_sizes,
        "teacher_widths": aux_sizes[largest],
        "template_steps": steps,
    }
    paths = []
    for t, (src, out, (actor_t, critic_t)) in enumerate(zip(srcs, outs, sets)):
        shared = {
            "tasks": learned_on,
            "held_out": src.env_id not in learned_on,
            "source": source,
            "fitted_on": "samples" if hidden is None else "calib",
            "sha256": hidden_sha256(actor_t, critic_t),
        }
        paths.append(
            write_bank(
                out,
                src,
                data[t].subset(calib),
                units[t],
                actor_t,
                critic_t,
                teacher_scalers(aux[t][largest]),
                losses[t],
                info,
                samples=len(fit_data[t]),
                seed=seed,
                command=command,
                start=start,
                extra={"shared_hidden": shared},
            )
        )
    return paths

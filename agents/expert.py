"""`weit-rl expert`: train a recipe's candidate seeds (configs/experts.yaml), evaluate each
under the expert protocol (weit_rl.artifacts.experts: 20 deterministic episodes on held-out seeds) and
ship the best. A constrained expert (pretrain hard or soft) is shipped as a stock SB3 model of
its assembled weights, with its templates and scalers in templates.safetensors beside it.

Nothing shipped is destroyed: a folder that already ships an expert is replaced only when
asked (`replace`), and then only after the new files are written and verified."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import yaml
from safetensors.torch import save_file

from weit_rl import UserError
from weit_rl.agents.config import RunConfig
from weit_rl.agents.evaluation import evaluate_saved
from weit_rl.agents.train import train
from weit_rl.artifacts.experts import EVAL_EPISODES, EVAL_SEED, evaluation_summary, expert_dir
from weit_rl.artifacts.provenance import code_version
from weit_rl.config import expert_recipe, learner_hyperparams, load_yaml
from weit_rl.envs import short_name
from weit_rl.policies.constrained import (
    ConstrainedActorCriticPolicy,
    ConstrainedSACPolicy,
    composition_residual,
    export_stock,
    template_tensors,
)
from weit_rl.policies.sb3 import ALGOS

SHIPPED = ("model.zip", "vecnormalize.pkl", "config.yaml", "templates.safetensors")


def evaluate_expert(path: str | Path, env_id: str, algo: str) -> dict[str, Any]:
    return evaluation_summary(evaluate_saved(str(path), env_id, algo, EVAL_EPISODES, seed=EVAL_SEED))


def pretraining(scheme: str) -> dict[str, Any]:
    """RunConfig fields of a pre-training scheme: configs/experts.yaml's `pretraining` entry."""
    if scheme == "none":
        return {}
    table = load_yaml("experts.yaml").get("pretraining") or {}
    if scheme not in table:
        raise UserError(
            f"unknown pre-training {scheme!r}: choose none or one of {', '.join(table)} "
            "(configs/experts.yaml, pretraining)"
        )
    return {"pretrain": scheme} | {f"pretrain_{k}": v for k, v in table[scheme].items()}


def train_expert(
    env_id: str,
    algo: str,
    seeds: list[int] | None,
    steps: int | None,
    device: str,
    out: Path | None,
    command: str,
    progress_bar: bool = True,
    pretrain: str = "none",
    replace: bool = False,
) -> dict[str, Any] | None:
    """Train the recipe's candidate seeds (each resumable, in out/candidates/s<seed>/),
    evaluate each one's kept model under the protocol, and once every recipe seed is done
    ship the best candidate as out/model.zip with a manifest listing them all. Returns the
    manifest, or None while candidates are still missing."""
    recipe, scheme = expert_recipe(algo, env_id), pretraining(pretrain)
    out = out or expert_dir(env_id, algo, pretrain)
    for seed in seeds if seeds is not None else recipe["seeds"]:
        cand = out / "candidates" / f"s{seed}"
        if (cand / "result.json").exists():
            continue
        cfg = RunConfig(
            env=env_id,
            algo=algo,
            size=",".join(map(str, recipe["net_arch"])),
            init="scratch",
            steps=steps or recipe["steps"],
            seed=seed,
            device=device,
            run_dir=str(cand),
            eval_freq=recipe["eval_freq"],
            eval_episodes=10,
            checkpoint_freq=recipe.get("checkpoint_freq", 50_000),
            keep_best=recipe.get("keep", "last") == "best",
            stop_return=recipe.get("stop_return"),
            progress_bar=progress_bar,
            hyperparams=learner_hyperparams(algo, env_id, "expert"),
            **scheme,
            obs_stats="fresh",
            obs_update="running",  # SB3's own statistics: an expert starts from nothing
            engine="stock",  # every shipped expert's candidates trained on it; their folders resume
        )
        train(cfg, command)
        kept = cand / "best" if cfg.keep_best else cand
        result: dict[str, Any] = {}
        if pretrain != "none":
            result["pretraining"] = export_constrained(kept, cand, cand / "stock", algo)
            kept = cand / "stock"
        steps_trained, wall = _last_evaluation(cand)
        result |= {
            "seed": seed,
            "steps_trained": steps_trained,
            "kept_model": str(kept.relative_to(cand)),
            "wall_time_s": wall,
            "evaluation": evaluate_expert(kept, env_id, algo),
        }
        if cfg.keep_best:
            result["kept_step"] = yaml.safe_load((cand / "best" / "score.yaml").read_text())["timesteps"]
        _write_json(cand / "result.json", result)
    return ship_best(env_id, algo, out, command, replace)


def export_constrained(kept: Path, run: Path, dest: Path, algo: str) -> dict[str, Any]:
    """A constrained model (kept/model.zip) as a stock SB3 model in dest/, with its
    templates and expert-size scalers in dest/templates.safetensors; returns what was exported."""
    model = ALGOS[algo].load(kept / "model.zip", device="cpu")
    policy = model.policy
    assert isinstance(policy, ConstrainedActorCriticPolicy | ConstrainedSACPolicy)  # a constrained run's
    info = {k: v for k, v in policy.constraint_kwargs.items()} | {"residual": composition_residual(policy)}
    dest.mkdir(parents=True, exist_ok=True)
    export_stock(model, dest / "model.zip")
    norm = kept / "vecnormalize.pkl" if (kept / "vecnormalize.pkl").exists() else run / "vecnormalize.pkl"
    if norm.exists():
        shutil.copy2(norm, dest / "vecnormalize.pkl")
    meta = {"pretraining": json.dumps(info), "net_arch": json.dumps(model.policy_kwargs["net_arch"])}
    save_file(template_tensors(policy), str(dest / "templates.safetensors"), metadata=meta)
    return info


def ship_best(env_id: str, algo: str, out: Path, command: str, replace: bool = False) -> dict[str, Any] | None:
    """Ship the best finished candidate (by the protocol's mean return) as out/. A folder that
    already ships an expert keeps it unless `replace`; files are swapped in only once all new
    files are written and the model loads."""
    recipe = expert_recipe(algo, env_id)
    results = [json.loads(p.read_text()) for p in sorted((out / "candidates").glob("s*/result.json"))]
    if {r["seed"] for r in results} < set(recipe["seeds"]):
        return None
    best = max(results, key=lambda r: r["evaluation"]["mean"])
    src = out / "candidates" / f"s{best['seed']}"
    kept = src / best["kept_model"] if best["kept_model"] != src.name else src
    shipped = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else None
    if shipped is not None and (out / "model.zip").exists():
        same = shipped.get("seed") == best["seed"] and shipped.get("evaluation") == best["evaluation"]
        if same or not replace:
            if not same:
                print(
                    f"{out} already ships an expert (return {shipped['evaluation']['mean']:.1f}); the best new "
                    f"candidate (seed {best['seed']}, return {best['evaluation']['mean']:.1f}) is in {kept}: pass "
                    "--replace (REPLACE=1 with make) to ship it instead"
                )
            return shipped
    if not (kept / "model.zip").exists():
        raise UserError(
            f"the best candidate's model {kept / 'model.zip'} is missing (candidate model files are not "
            f"in git): retrain it by deleting {src / 'result.json'} and running the same command"
        )
    run_cfg = yaml.safe_load((src / "config.yaml").read_text())
    staging = out / ".shipping"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in SHIPPED:
        source = kept / name if (kept / name).exists() else src / name  # best/ holds no config.yaml
        if source.exists():
            shutil.copy2(source, staging / name)
    ALGOS[algo].load(staging / "model.zip", device="cpu")  # verify before anything shipped is touched
    manifest = {
        "task": env_id,
        "algo": algo,
        "net_arch": recipe["net_arch"],
        "seed": best["seed"],
        "steps": best["steps_trained"],
        "kept": (
            f"best evaluation during training (step {best['kept_step']}, {run_cfg['eval_episodes']} episodes "
            f"every {run_cfg['eval_freq']} steps)"
            if "kept_step" in best
            else "final model"
        ),
        "pretraining": best.get("pretraining", {"constraint": "none"}),
        "evaluation": best["evaluation"],
        "eval_return_mean": best["evaluation"]["mean"],
        "eval_episodes": best["evaluation"]["episodes"],
        "selection": "every recipe seed is trained; the candidate with the highest evaluation mean is shipped",
        "candidates": [
            {k: r[k] for k in ("seed", "steps_trained", "wall_time_s")}
            | {
                "mean": r["evaluation"]["mean"],
                "median": r["evaluation"]["median"],
                "min": r["evaluation"]["min"],
                "kept": r is best,
            }
            for r in results
        ],
        "recipe": recipe,
        "hyperparams": run_cfg["hyperparams"],
        "command": command,
        "code_version": code_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    for name in SHIPPED:
        if (staging / name).exists():
            os.replace(staging / name, out / name)
        else:
            (out / name).unlink(missing_ok=True)  # a file of the replaced expert the new one does not have
    _write_json(out / "manifest.json", manifest)
    shutil.rmtree(staging)
    for stale in ("evaluations.csv", "command.txt"):  # the run records stay with the candidate
        (out / stale).unlink(missing_ok=True)
    print(f"shipped {out}: seed {best['seed']} of {short_name(env_id)}/{algo}")
    return manifest


def _last_evaluation(run_dir: Path) -> tuple[int, int | None]:
    """Steps trained and the wall seconds of every session together (evaluations.csv's
    cumulative wall_s; None for a file written before that column existed)."""
    with (run_dir / "evaluations.csv").open() as f:
        last = max(csv.DictReader(f), key=lambda row: int(row["timesteps"]))
    return int(last["timesteps"]), round(float(last["wall_s"])) if last.get("wall_s") else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)

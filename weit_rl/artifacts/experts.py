"""Where shipped experts and banks live, and the expert manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from weit_rl import UserError
from weit_rl.artifacts.bank_file import read_manifest
from weit_rl.config import load_yaml
from weit_rl.envs import TASKS, short_name


def home() -> Path:
    """Where experts/ and banks/ are looked up: WEIT_RL_HOME, else the current folder."""
    return Path(os.environ.get("WEIT_RL_HOME", "."))


def find_bank(bank: str) -> str:
    """A bank given by path, or by name ("HalfCheetah-ppo"): banks/<name>.safetensors under
    WEIT_RL_HOME (else the current folder), then in the checkout weit_rl is installed from."""
    if Path(bank).exists() or "/" in bank or bank.endswith(".safetensors"):
        return bank
    file = f"{bank}.safetensors"
    for root in (home(), Path(__file__).resolve().parents[2]):  # the checkout: weit_rl/artifacts/ -> ../..
        if (root / "banks" / file).exists():
            return str(root / "banks" / file)
    raise UserError(
        f"no template bank named {bank!r}: looked for banks/{file} under WEIT_RL_HOME (else the current "
        f"folder) and beside the installed weit_rl; pass a path, or list the banks with `weit-rl list`"
    )


def expert_dir(env_id: str, algo: str, pretrain: str = "none") -> Path:
    """experts/<Env>-<algo>, or experts/<Env>-<algo>-<scheme> for a constrained expert."""
    return home() / "experts" / f"{short_name(env_id)}-{algo}{'' if pretrain == 'none' else '-' + pretrain}"


def bank_path(env_id: str, algo: str, pretrain: str = "none") -> Path:
    """banks/<Env>-<algo>.safetensors (post hoc), or banks/<Env>-<algo>-<scheme>.safetensors."""
    return home() / "banks" / f"{short_name(env_id)}-{algo}{'' if pretrain == 'none' else '-' + pretrain}.safetensors"


def _expert_hint(env_id: str, algo: str) -> str:
    """How to get an expert: `make expert` where configs/experts.yaml has a recipe for it."""
    make = f"`make expert ENV={short_name(env_id)} ALGO={algo}`"
    if env_id in (load_yaml("experts.yaml").get(algo) or {}):
        return make
    return f"{make} once configs/experts.yaml has a {algo} recipe for {env_id} (add one; it has none)"


def default_expert(env_id: str, algo: str) -> str:
    path = expert_dir(env_id, algo)
    if not (path / "model.zip").exists():
        raise UserError(
            f"no {algo} expert for {env_id} at {path}: train one with {_expert_hint(env_id, algo)}, "
            "or pass --expert PATH (EXPERT=PATH with make)"
        )
    return str(path)


def default_bank(env_id: str, algo: str) -> str:
    path = bank_path(env_id, algo)
    if not path.exists():
        raise UserError(
            f"no {algo} template bank for {env_id} at {path} (banks are looked up under WEIT_RL_HOME, else "
            "the current folder: run from the repository or set WEIT_RL_HOME); build one with "
            f"`make templates ENV={short_name(env_id)} ALGO={algo}` (needs an expert: "
            f"{_expert_hint(env_id, algo)}), or pass --bank PATH (BANK=PATH with make)"
        )
    return str(path)


def read_expert_manifest(expert: str | Path) -> dict[str, Any]:
    """manifest.json beside an expert's model.zip (folder or file path); {} if there is none."""
    path = Path(expert)
    path = (path if path.is_dir() else path.parent) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def describe_pretraining(m: dict[str, Any]) -> str:
    """How a bank's templates or an expert's weights were made: post hoc, or pre-trained
    under the hard or soft constraint (manifests before this field are post hoc / plain)."""
    p = m.get("pretraining") or {"constraint": "none"}
    if p["constraint"] == "none":
        return "templates learned post hoc" if "n_templates" in m else "plain"
    extra = f", lambda {p['penalty']}, residual {p['residual']:.3f}" if p["constraint"] == "soft" else ""
    return (
        f"{p['constraint']}-constrained pre-training ({p['n_templates']} templates of {p['block']}x{p['block']}{extra})"
    )


def describe_return(m: dict[str, Any], returns: bool = False) -> str:
    """An expert's return as its manifest records it: the protocol's `evaluation` (mean,
    median, min over its episodes) where present, else the older eval_return_mean."""
    ev = m.get("evaluation")
    if ev:
        text = f"{ev['mean']:.0f} (median {ev['median']:.0f}, min {ev['min']:.0f}, {ev['episodes']} episodes)"
        return text + (f": {', '.join(f'{r:.0f}' for r in ev['returns'])}" if returns and ev.get("returns") else "")
    if m.get("eval_return_mean") is not None:
        return f"{m['eval_return_mean']:.0f}" + (f" ({m['eval_episodes']} episodes)" if m.get("eval_episodes") else "")
    return "-"


def shipped() -> list[dict[str, Any]]:
    """The banks and experts under home(), one row each (for `weit-rl list`): kind, task,
    algo, network, return, megabytes, path. An unreadable bank is listed with its error."""
    rows: list[dict[str, Any]] = []
    for path in sorted((home() / "banks").glob("*.safetensors")):
        try:
            m = read_manifest(path)
        except UserError as err:
            rows.append(
                {
                    "kind": "bank",
                    "task": "?",
                    "algo": "?",
                    "network": "-",
                    "return": str(err),
                    "path": path,
                    "scheme": "-",
                }
            )
            continue
        expert = m.get("expert") or {}
        rows.append(
            {
                "kind": "bank",
                "task": m.get("task"),
                "algo": m.get("algo"),
                "path": path,
                "network": f"{m.get('n_templates')} templates {m.get('block')}x{m.get('block')}, expert "
                + "x".join(map(str, expert.get("net_arch") or [])),
                "scheme": describe_pretraining(m),
                "return": describe_return(expert),
            }
        )
    for folder in sorted(p for p in (home() / "experts").glob("*") if p.is_dir()):
        m = read_expert_manifest(folder)
        if m:
            rows.append(
                {
                    "kind": "expert",
                    "task": m.get("task"),
                    "algo": m.get("algo"),
                    "path": folder / "model.zip",
                    "network": "x".join(map(str, m.get("net_arch") or [])),
                    "return": describe_return(m),
                    "scheme": describe_pretraining(m),
                }
            )
        else:
            seeds = ", ".join(p.name for p in sorted((folder / "candidates").glob("s*")))
            task, algo, *scheme = folder.name.split("-")
            rows.append(
                {
                    "kind": "expert",
                    "task": TASKS.get(task, task),
                    "algo": algo,
                    "scheme": "-".join(scheme) or "-",
                    "path": folder,
                    "network": "-",
                    "return": f"not shipped yet (candidates: {seeds or 'none'})",
                }
            )
    for row in rows:
        row["mb"] = row["path"].stat().st_size / 1e6 if row["path"].is_file() else None
    return rows


# The expert evaluation protocol, in one place: deterministic episodes on seeds disjoint
# from training (seeds 0..999) and from training-time evaluation (seed + 10_000).
EVAL_EPISODES = 20
EVAL_SEED = 1_000_000


def evaluation_summary(returns: list[float]) -> dict[str, Any]:
    return {
        "episodes": len(returns),
        "seed": EVAL_SEED,
        "deterministic": True,
        "mean": float(np.mean(returns)),
        "median": float(np.median(returns)),
        "min": float(np.min(returns)),
        "max": float(np.max(returns)),
        "std": float(np.std(returns)),
        "returns": [round(r, 2) for r in returns],
    }

"""Benchmark: shipped experts re-evaluated in stock SB3, in a process where importing weit_rl
fails: the model.zip and vecnormalize.pkl alone, 20 deterministic episodes on the expert
protocol's evaluation seeds (1,000,000 + i, disjoint from training), each episode in its own env.

    .venv/bin/python bench/stock_eval.py experts/HalfCheetah-ppo-hard experts/HalfCheetah-ppo
Writes reports/pretraining/stock_eval.md (and .json)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

EPISODES, SEED = 20, 1_000_000  # weit_rl.artifacts.experts EVAL_EPISODES, EVAL_SEED (not imported: see CHILD)

# Run in a fresh interpreter with weit_rl made unimportable: only SB3 and Gymnasium load the expert.
CHILD = r"""
import json, sys
sys.modules["weit_rl"] = None  # any import of weit_rl now fails
import gymnasium as gym, numpy as np, yaml, pickle
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv
folder, episodes, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg = yaml.safe_load(open(f"{folder}/config.yaml"))
model = {"ppo": PPO, "sac": SAC}[cfg["algo"]].load(f"{folder}/model.zip", device="cpu")
try:
    norm = pickle.load(open(f"{folder}/vecnormalize.pkl", "rb"))
except FileNotFoundError:
    norm = None
returns = []
for i in range(episodes):
    env = gym.make(cfg["env"])
    obs, _ = env.reset(seed=seed + i)
    done, total = False, 0.0
    while not done:
        x = norm.normalize_obs(obs) if norm is not None else obs
        action, _ = model.predict(x, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total, done = total + float(reward), terminated or truncated
    returns.append(total)
print(json.dumps({"weit_rl_importable": False, "returns": returns}))
"""


def evaluate(folder: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, folder, str(EPISODES), str(SEED)], capture_output=True, text=True, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    res["manifest_mean"] = (
        manifest["evaluation"]["mean"] if "evaluation" in manifest else manifest.get("eval_return_mean")
    )
    res["pretraining"] = (manifest.get("pretraining") or {}).get("constraint", "none")
    res["steps"] = manifest.get("steps")
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experts", nargs="+")
    p.add_argument("--out", default="reports/pretraining/stock_eval")
    a = p.parse_args()
    results = {folder: evaluate(folder) for folder in a.experts}
    lines = [
        "# Shipped experts in stock SB3 (weit_rl unimportable)",
        "",
        __doc__.split("\n\n")[0].replace("\n", " "),
        "",
        "Command: `python " + " ".join(sys.argv) + "`.",
        "",
        "| expert | pre-training | steps | mean (stock SB3) | min | max | manifest's mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for folder, r in results.items():
        ret = r["returns"]
        lines.append(
            f"| `{folder}` | {r['pretraining']} | {r['steps']:,} | {sum(ret) / len(ret):,.1f} | {min(ret):,.1f} | "
            f"{max(ret):,.1f} | {r['manifest_mean']:,.1f} |"
        )
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

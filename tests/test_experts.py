"""`weit-rl expert`: every recipe seed trained once, the best shipped, the record complete."""

import csv
import json

import weit_rl.experts as experts

RECIPE = {"net_arch": [16], "steps": 256, "seeds": [0, 1], "eval_freq": 128, "keep": "best",
          "hyperparams": {"n_steps": 64, "batch_size": 32, "n_epochs": 1}}


def test_every_seed_is_recorded_and_the_best_ships(tmp_path, monkeypatch):
    monkeypatch.setattr(experts, "expert_recipe", lambda algo, env_id: RECIPE)
    monkeypatch.setattr(experts, "EVAL_EPISODES", 3)
    out = tmp_path / "Hopper-ppo"
    manifest = experts.train_expert("Hopper-v5", "ppo", None, None, "cpu", out, "tests", progress_bar=False)
    cands = {c["seed"]: c for c in manifest["candidates"]}
    assert set(cands) == {0, 1} and sum(c["kept"] for c in cands.values()) == 1
    best = max(cands.values(), key=lambda c: c["mean"])
    assert best["kept"] and manifest["seed"] == best["seed"] and manifest["evaluation"]["episodes"] == 3
    for seed, cand in cands.items():
        with (out / "candidates" / f"s{seed}" / "evaluations.csv").open() as f:
            last = list(csv.DictReader(f))[-1]
        assert cand["steps_trained"] == int(last["timesteps"]) >= 256
        assert cand["wall_time_s"] == round(float(last["wall_s"]))  # every session's wall time together
    assert (out / "model.zip").exists() and (out / "vecnormalize.pkl").exists()
    results = {p: p.read_text() for p in out.glob("candidates/s*/result.json")}
    again = experts.train_expert("Hopper-v5", "ppo", None, None, "cpu", out, "tests", progress_bar=False)
    assert {p: p.read_text() for p in results} == results  # finished seeds are never retrained
    assert again["candidates"] == json.loads((out / "manifest.json").read_text())["candidates"]

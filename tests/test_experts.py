"""`weit-rl expert`: every recipe seed trained once, the best shipped, the record complete."""

import csv
import json

import pytest

import weit_rl.agents.expert as experts
from weit_rl import UserError

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

RECIPE = {
    "net_arch": [16],
    "steps": 256,
    "seeds": [0, 1],
    "eval_freq": 128,
    "keep": "best",
    "hyperparams": {"n_steps": 64, "batch_size": 32, "n_epochs": 1},
}


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


def _shipped_bytes(out):
    return {name: (out / name).read_bytes() for name in experts.SHIPPED + ("manifest.json",) if (out / name).exists()}


def test_a_fresh_clone_never_loses_the_shipped_expert(tmp_path, monkeypatch):
    """A clone has the shipped files and every candidate's result.json, but not the candidates'
    model files (not in git): `make expert` must leave the shipped expert byte for byte."""
    monkeypatch.setattr(experts, "expert_recipe", lambda algo, env_id: RECIPE | {"seeds": [0]})
    monkeypatch.setattr(experts, "EVAL_EPISODES", 2)
    out = tmp_path / "Hopper-ppo"
    experts.train_expert("Hopper-v5", "ppo", None, None, "cpu", out, "tests", progress_bar=False)
    shipped = _shipped_bytes(out)
    for ignored in (out / "candidates" / "s0").glob("**/*"):
        if ignored.suffix in (".zip", ".pkl"):
            ignored.unlink()
    experts.train_expert("Hopper-v5", "ppo", None, None, "cpu", out, "tests", progress_bar=False)
    assert _shipped_bytes(out) == shipped
    # a new, better candidate ships only when replacement is asked for
    result = out / "candidates" / "s0" / "result.json"
    data = json.loads(result.read_text())
    data["evaluation"]["mean"] += 1000.0
    result.write_text(json.dumps(data))
    experts.train_expert("Hopper-v5", "ppo", None, None, "cpu", out, "tests", progress_bar=False)
    assert _shipped_bytes(out) == shipped
    with pytest.raises(UserError, match="missing"):  # its model files are gone: refuse, touch nothing
        experts.train_expert("Hopper-v5", "ppo", None, None, "cpu", out, "tests", progress_bar=False, replace=True)
    assert _shipped_bytes(out) == shipped

"""Bank file: exact round trip, manifest, and validation of damaged files."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

import weit_rl
from weit_rl import UserError
from weit_rl.artifacts.bank import load_bank, read_manifest, save_bank


def test_round_trip_is_exact(tiny_ppo_bank, tmp_path):
    bank = load_bank(tiny_ppo_bank)
    copy = save_bank(tmp_path / "copy.safetensors", bank)
    again = load_bank(copy)
    for a, b in [(bank.actor, again.actor), (bank.critic, again.critic)]:
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    for name in ("obs", "actor_target", "critic_target"):
        assert torch.equal(getattr(bank.calib_set, name), getattr(again.calib_set, name))
    assert torch.equal(bank.log_std, again.log_std) and torch.equal(bank.obs_mean, again.obs_mean)
    assert again.manifest == bank.manifest


def test_manifest_records_provenance(tiny_ppo_bank, tiny_sac_bank):
    m = read_manifest(tiny_ppo_bank)
    assert (m["task"], m["algo"], m["obs_dim"], m["act_dim"]) == ("HalfCheetah-v5", "ppo", 17, 6)
    assert m["expert"]["net_arch"] == [32, 32, 32] and m["calib"] == 400 and m["command"] == "tests"
    assert json.loads(tiny_ppo_bank.with_suffix(".json").read_text()) == m
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=Path(weit_rl.__file__).parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if head.returncode == 0:  # a checkout: the manifest names the commit whose code built the bank
        assert m["code_version"].startswith(f"{weit_rl.__version__} (git {head.stdout.strip()}")
    bank = load_bank(tiny_ppo_bank)
    assert bank.calib_set.obs.shape == (400, 17) and bank.calib_set.critic_target.shape == (400, 1)
    sac = load_bank(tiny_sac_bank)
    assert sac.calib_set.actions.shape == (400, 6) and sac.calib_set.critic_target.shape == (400, 2)
    assert sac.calib_set.actor_target.shape == (400, 12)  # pre-tanh mean and log_std
    assert sac.log_std is None and sac.obs_mean is None


def test_truncated_bank_is_reported(tiny_ppo_bank, tmp_path):
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(tiny_ppo_bank.read_bytes()[:-100])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_bank(bad)


def test_flipped_bytes_fail_the_checksum(tiny_ppo_bank, tmp_path):
    data = bytearray(tiny_ppo_bank.read_bytes())
    data[-10] ^= 0xFF
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum"):
        load_bank(bad)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_bank(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_text("not a bank")
    with pytest.raises(UserError, match="corrupt"):
        load_bank(junk)


def test_templates_never_overwrite_a_bank_unasked(tiny_ppo_expert, tiny_ppo_bank, tmp_path):
    from weit_rl.artifacts.build_bank import build_bank

    target = tmp_path / "bank.safetensors"
    target.write_bytes(tiny_ppo_bank.read_bytes())
    with pytest.raises(UserError, match="--replace"):
        build_bank(
            str(tiny_ppo_expert),
            "HalfCheetah",
            "ppo",
            str(target),
            samples=300,
            calib=100,
            steps=5,
            n_templates=4,
            block=8,
            aux_sizes=[[16]],
        )
    assert target.read_bytes() == tiny_ppo_bank.read_bytes()
    build_bank(
        str(tiny_ppo_expert),
        "HalfCheetah",
        "ppo",
        str(target),
        samples=300,
        calib=100,
        steps=5,
        n_templates=4,
        block=8,
        aux_sizes=[[16]],
        replace=True,
    )
    assert load_bank(target).manifest["template_steps"] == 5

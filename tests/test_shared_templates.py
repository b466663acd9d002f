"""Template learning across tasks (weit_rl/artifacts/shared_templates.py): banks of several tasks share
their hidden templates bit for bit, keep their own input/output templates, and each works as
an ordinary bank; a held-out task keeps the given hidden templates and fits the rest."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from weit_rl.artifacts.bank import load_bank
from weit_rl.artifacts.shared_templates import build_shared_banks
from weit_rl.policies.classes import WeiTActorCriticPolicy
from weit_rl.templates.data import ExpertData
from weit_rl.templates.fit import learn_shared_templates
from weit_rl.templates.kron import TemplateSet

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`

TINY = dict(samples=600, calib=200, steps=40, n_templates=4, block=8, aux_sizes=[[16, 16], [24]], command="tests")
HIDDEN = ("hid_w", "hid_b")


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.detach().numpy().tobytes() == b.detach().numpy().tobytes()


@pytest.fixture(scope="module")
def shared(tiny_ppo_expert, tiny_hopper_expert, tmp_path_factory):
    out = tmp_path_factory.mktemp("shared")
    return build_shared_banks(
        ["HalfCheetah", "Hopper"], "ppo", out, [str(tiny_ppo_expert), str(tiny_hopper_expert)], **TINY
    )


def test_hidden_templates_are_one_parameter_trained_by_every_task():
    gen = torch.Generator().manual_seed(0)
    data = [
        ExpertData(
            torch.randn(64, d, generator=gen), torch.randn(64, a, generator=gen), torch.randn(64, 1, generator=gen)
        )
        for d, a in ((5, 2), (7, 3))
    ]
    sets, losses, _ = learn_shared_templates(data, [[8, 8]], 2, 4, "relu", steps=5, progress=False)
    (a0, c0), (a1, c1) = sets
    assert a0.hid_w is a1.hid_w and c0.hid_b is c1.hid_b and a0.in_w is not a1.in_w
    assert not same_bits(a0.hid_w, TemplateSet(5, 2, 2, 4, torch.Generator().manual_seed(0)).hid_w)  # trained
    assert len(losses) == 2 and len(losses[0]) == 5
    frozen = {"actor": (a0.hid_w.clone(), a0.hid_b.clone()), "critic": (c0.hid_w.clone(), c0.hid_b.clone())}
    ((a2, c2),) = learn_shared_templates(data[:1], [[8, 8]], 2, 4, "relu", steps=5, hidden=frozen, progress=False)[0]
    assert same_bits(a2.hid_w, frozen["actor"][0]) and same_bits(c2.hid_b, frozen["critic"][1])
    assert not same_bits(a2.in_w, a0.in_w)


def test_shared_banks_share_hidden_templates_bit_for_bit(shared):
    cheetah, hopper = (load_bank(p) for p in shared)
    for net in ("actor", "critic"):
        for name in HIDDEN:
            assert same_bits(getattr(getattr(cheetah, net), name), getattr(getattr(hopper, net), name))
        # input and output templates stay per task: their own sizes and values
        assert getattr(cheetah, net).in_w.shape[-1] == 17 and getattr(hopper, net).in_w.shape[-1] == 11
    assert cheetah.actor.out_w.shape[1] == 6 and hopper.actor.out_w.shape[1] == 3
    assert not same_bits(cheetah.critic.out_w, hopper.critic.out_w)
    for bank in (cheetah, hopper):
        s = bank.manifest["shared_hidden"]
        assert s["tasks"] == ["HalfCheetah-v5", "Hopper-v5"] and s["held_out"] is False and s["source"] is None
        assert s["sha256"] == cheetah.manifest["shared_hidden"]["sha256"]
        assert bank.manifest["samples"] == TINY["samples"] and len(bank.calib_set) == TINY["calib"]


@pytest.mark.parametrize("index,task", [(0, "HalfCheetah-v5"), (1, "Hopper-v5")])
def test_each_shared_bank_initializes_a_policy(shared, index, task):
    kwargs = dict(
        bank=str(shared[index]),
        init="weit",
        init_seed=0,
        net_arch=[20, 20],
        activation_fn=torch.nn.ReLU,
        fit_steps=10,
        task=task,
        log_std="source",
    )
    model = PPO(WeiTActorCriticPolicy, make_vec_env(task), policy_kwargs=kwargs, n_steps=64, batch_size=32, seed=0)
    obs = torch.as_tensor(model.env.reset(), dtype=torch.float32)
    with torch.no_grad():
        assert torch.isfinite(model.policy.predict_values(obs)).all()
    assert torch.equal(model.policy.log_std, load_bank(shared[index]).log_std)


def test_held_out_task_keeps_the_given_hidden_templates(tiny_ppo_bank, tiny_hopper_expert, tmp_path):
    (path,) = build_shared_banks(
        ["Hopper"],
        "ppo",
        tmp_path,
        [str(tiny_hopper_expert)],
        hidden_from=str(tiny_ppo_bank),
        **TINY | dict(n_templates=None, block=None),
    )
    source, bank = load_bank(tiny_ppo_bank), load_bank(path)
    for net in ("actor", "critic"):
        for name in HIDDEN:
            assert same_bits(getattr(getattr(source, net), name), getattr(getattr(bank, net), name))
    m = bank.manifest
    assert m["shared_hidden"]["tasks"] == ["HalfCheetah-v5"] and m["shared_hidden"]["held_out"] is True
    assert m["shared_hidden"]["source"]["tensor_sha256"] == source.manifest["tensor_sha256"]
    # fitted on the calibration set alone, and the fit did learn
    assert m["shared_hidden"]["fitted_on"] == "calib" and m["samples"] == m["calib"] == TINY["calib"]
    assert m["final_loss"] < m["loss_log"]["0"]
    assert bank.actor.in_w.shape[-1] == 11 and bank.actor.out_w.shape[1] == 3


def test_cli_refuses_to_overwrite_a_shared_bank(tmp_path):
    kept = tmp_path / "Hopper-ppo.safetensors"
    kept.write_bytes(b"keep me")
    r = run_cli("templates", "--shared", "HalfCheetah,Hopper", "--out-dir", str(tmp_path))
    assert r.returncode == 2 and "exists" in r.stderr and "--replace" in r.stderr
    assert kept.read_bytes() == b"keep me" and not (tmp_path / "HalfCheetah-ppo.safetensors").exists()
    r = run_cli("templates", "--hidden-from", str(kept), "--out-dir", str(tmp_path))
    assert r.returncode == 2 and "--env TASK" in r.stderr

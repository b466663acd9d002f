"""Fitting in standardized units: folding the units into the weights keeps the function."""

import torch

from weit_rl.artifacts.bank import load_bank, save_bank
from weit_rl.templates.data import ExpertData
from weit_rl.templates.kron import mlp_forward
from weit_rl.templates.standardize import MIN_OBS_STD, Standardization


def layers(*sizes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(m, n), torch.randn(m)) for n, m in zip(sizes[:-1], sizes[1:])]


def test_folded_weights_compute_the_same_function_on_raw_inputs():
    torch.manual_seed(0)
    obs = torch.randn(50, 5) * torch.tensor([0.05, 1.0, 3.0, 10.0, 0.0]) + torch.tensor([1.0, -2.0, 0.0, 5.0, 7.0])
    actions = torch.rand(50, 2) * 2 - 1
    data = ExpertData(obs, torch.randn(50, 4), torch.randn(50, 2) * 23 + 460, actions)
    units = Standardization.of(data)
    assert units.obs_std[-1] == MIN_OBS_STD  # a constant dimension is not blown up
    weights = {"actor": layers(5, 8, 4), "critics": [layers(7, 8, 6, 1), layers(7, 3, 1)], "log_std": None}
    folded = units.fold(weights)
    std = units.apply(data)
    want = mlp_forward(weights["actor"], std.obs, "relu")
    # float32: folding 1/std of a 0.05-spread input into the weights costs ~1e-5 of rounding,
    # and the summation order (thread count) decides on which side of 1e-5 it lands
    torch.testing.assert_close(mlp_forward(folded["actor"], obs, "relu"), want, rtol=1e-4, atol=1e-4)
    x_raw, x_std = torch.cat([obs, actions], 1), torch.cat([std.obs, actions], 1)
    for i, (raw, fitted) in enumerate(zip(folded["critics"], weights["critics"])):
        want = mlp_forward(fitted, x_std, "relu")[:, 0] * units.value_std[i] + units.value_mean[i]
        torch.testing.assert_close(mlp_forward(raw, x_raw, "relu")[:, 0], want, rtol=1e-4, atol=1e-3)
    assert folded["log_std"] is None and weights["actor"][0][0].shape == folded["actor"][0][0].shape


def test_standardized_data_has_unit_spread_and_identity_changes_nothing():
    data = ExpertData(torch.randn(200, 3) * 7 + 2, torch.randn(200, 2), torch.randn(200, 1) * 50 + 300)
    std = Standardization.of(data).apply(data)
    torch.testing.assert_close(std.obs.std(0), torch.ones(3))
    torch.testing.assert_close(std.critic_target.mean(0), torch.zeros(1), atol=1e-4, rtol=0)
    same = Standardization.identity(3, 1)
    assert torch.equal(same.apply(data).obs, data.obs)
    w = {"actor": layers(3, 4, 2), "critics": [layers(3, 4, 1)]}
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(same.fold(w)["actor"], w["actor"]))


def test_banks_keep_their_units_and_old_banks_read_as_raw(tiny_sac_bank, tmp_path):
    bank = load_bank(tiny_sac_bank)
    assert bank.standardization is not None  # built by this version: fitted in standardized units
    torch.testing.assert_close(bank.units.value_mean, bank.calib_set.critic_target.mean(0), rtol=0.05, atol=1.0)
    again = load_bank(save_bank(tmp_path / "copy.safetensors", bank))
    assert torch.equal(again.units.obs_std, bank.units.obs_std)
    bank.standardization = None  # a bank written before standardization existed
    old = load_bank(save_bank(tmp_path / "old.safetensors", bank))
    assert old.standardization is None and torch.equal(old.units.obs_std, torch.ones(17))

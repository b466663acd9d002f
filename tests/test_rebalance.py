"""Rebalancing moves norm between ReLU layers without changing the function."""

import pytest
import torch

from weit_rl.templates.kron import PlainMLP
from weit_rl.templates.rebalance import rebalance


def _layers(widths, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = list(zip(widths[1:], widths[:-1]))
    return [(torch.randn(m, n, generator=g) * (0.1 + i), torch.randn(m, generator=g)) for i, (m, n) in enumerate(sizes)]


@pytest.mark.parametrize("widths", [[17, 64, 64, 6], [11, 5, 3], [27, 100, 37, 64, 1]])
def test_function_unchanged_and_norms_follow_targets(widths):
    layers = _layers(widths)
    targets = [float(i + 1) for i in range(len(layers))]
    new = rebalance(layers, targets)
    x = torch.randn(256, widths[0], generator=torch.Generator().manual_seed(1))
    before, after = PlainMLP(layers, "relu")(x), PlainMLP(new, "relu")(x)
    assert torch.allclose(before, after, rtol=1e-5, atol=1e-5 * before.abs().max().item())
    norms = [float(w.norm()) for w, _ in new]
    ratios = [n / t for n, t in zip(norms, targets)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-5)
    product = torch.tensor([float(w.norm()) for w, _ in layers]).log().sum()
    assert torch.tensor(norms).log().sum().item() == pytest.approx(product.item(), rel=1e-5)


def test_not_function_preserving_for_tanh_is_why_it_is_relu_only():
    layers = _layers([5, 8, 2])
    new = rebalance(layers, [1.0, 1.0])
    x = torch.randn(64, 5)
    assert not torch.allclose(PlainMLP(layers, "tanh")(x), PlainMLP(new, "tanh")(x), atol=1e-3)

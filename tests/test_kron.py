"""The Kronecker assembly against an explicit sum of torch.kron products."""

import math

import pytest
import torch

from weit_rl.templates.kron import KronMLP, TemplateSet, assemble, assemble_bias


def explicit(scalers, templates, rows, cols):
    full = sum(torch.kron(scalers[k], templates[k]) for k in range(scalers.shape[0]))
    return full[:rows, :cols]


@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 200), (333, 17), (16, 16), (64, 33)])
@pytest.mark.parametrize("k,p,q", [(1, 8, 8), (4, 16, 16), (3, 5, 7)])
def test_assemble_equals_sum_of_kronecker_products(rows, cols, k, p, q):
    g = torch.Generator().manual_seed(rows * cols + k)
    s = torch.randn(k, math.ceil(rows / p), math.ceil(cols / q), generator=g, dtype=torch.float64)
    t = torch.randn(k, p, q, generator=g, dtype=torch.float64)
    w = assemble(s, t, rows, cols)
    assert w.shape == (rows, cols)
    torch.testing.assert_close(w, explicit(s, t, rows, cols), rtol=0, atol=1e-12)


def test_bias_is_the_one_dimensional_case():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 4, generator=g), torch.randn(3, 5, generator=g)
    expected = sum(torch.kron(s[k], t[k]) for k in range(3))[:17]
    torch.testing.assert_close(assemble_bias(s, t, 17), expected)


@pytest.mark.parametrize("widths", [[1], [7], [333, 17], [5, 1, 9], [64, 64, 64, 64], [200, 7, 33, 1, 16]])
def test_mlp_layers_match_explicit_assembly_for_any_depth_and_width(widths):
    ts = TemplateSet(d_in=17, d_out=6, n_templates=4, block=16, generator=torch.Generator().manual_seed(0))
    net = KronMLP(ts, widths, generator=torch.Generator().manual_seed(1))
    layers = net.materialize()
    sizes = [17, *widths, 6]
    assert [tuple(w.shape) for w, _ in layers] == list(zip(sizes[1:], sizes[:-1]))
    roles = ts.roles(len(widths))
    for (w, b), (t_w, t_b), s_w, s_b, n, m in zip(
        layers, roles, net.scalers.weight, net.scalers.bias, sizes[:-1], sizes[1:]
    ):
        torch.testing.assert_close(w, explicit(s_w.detach(), t_w.detach(), m, n))
        torch.testing.assert_close(b, explicit(s_b.detach()[:, :, None], t_b.detach()[:, :, None], m, 1)[:, 0])
    assert net(torch.randn(5, 17)).shape == (5, 6)


def test_hidden_layers_share_templates_and_only_scalers_grow_with_depth():
    ts = TemplateSet(11, 3, n_templates=4, block=8)
    shallow, deep = KronMLP(ts, [64]), KronMLP(ts, [64] * 4)
    n_templates = sum(p.numel() for p in ts.parameters())
    assert n_templates > 0 and deep.scalers.count() > shallow.scalers.count()
    # The nets hold the templates once, not a copy each: their parameter counts differ by scalers only.
    params = {net: sum(p.numel() for p in net.parameters()) for net in (shallow, deep)}
    assert params[shallow] == n_templates + shallow.scalers.count()
    assert params[deep] - params[shallow] == deep.scalers.count() - shallow.scalers.count()
    # Changing the hidden templates changes all three hidden-to-hidden layers of the deep net.
    before = [w for w, _ in deep.materialize()]
    with torch.no_grad():
        ts.hid_w.add_(1.0)
    after = [w for w, _ in deep.materialize()]
    assert [torch.equal(a, b) for a, b in zip(after, before)] == [True, False, False, False, True]


@pytest.mark.parametrize("widths", [[0], [], [4, 0]])
def test_invalid_widths_are_rejected(widths):
    with pytest.raises(ValueError):
        KronMLP(TemplateSet(3, 2, 2, 4), widths)


def test_same_seed_gives_bit_identical_scalers():
    ts = TemplateSet(17, 6, 4, 16, torch.Generator().manual_seed(0))
    a = KronMLP(ts, [48, 48], generator=torch.Generator().manual_seed(7)).materialize()
    b = KronMLP(ts, [48, 48], generator=torch.Generator().manual_seed(7)).materialize()
    c = KronMLP(ts, [48, 48], generator=torch.Generator().manual_seed(8)).materialize()
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b))
    assert not all(torch.equal(x, y) for (x, _), (y, _) in zip(a, c))

"""Kronecker weight templates (WAVE / WeiT, docs/design.md section 1).

A Linear layer's weight W (m x n) is a grid of p x q blocks; block (a, b) is a
weighted sum of K shared templates T_k, weighted by the layer's own scalers S_k:

    W = crop_{m x n}( sum_k S_k ⊗ T_k ),   S_k: ceil(m/p) x ceil(n/q),  T_k: p x q

Biases are the same with 1-D templates. Roles: the input layer's templates span the
whole input (p x d_in), the output layer's the whole output (d_out x q), hidden
layers share p x q templates. A network of any depth and width draws on one
TemplateSet through its own Scalers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "tanh": torch.tanh, "elu": F.elu}


def assemble(scalers: Tensor, templates: Tensor, rows: int, cols: int) -> Tensor:
    """crop(sum_k S_k ⊗ T_k) for S: (K, a, b) and T: (K, p, q)."""
    k, a, b = scalers.shape
    _, p, q = templates.shape
    blocks = torch.einsum("kab,kpq->apbq", scalers, templates)  # block (a, b) = sum_k S[k,a,b] T[k]
    return blocks.reshape(a * p, b * q)[:rows, :cols]


def assemble_bias(scalers: Tensor, templates: Tensor, size: int) -> Tensor:
    """The 1-D case: S: (K, a), T: (K, p) -> vector of length `size`."""
    return assemble(scalers[:, :, None], templates[:, :, None], size, 1)[:, 0]


class TemplateSet(nn.Module):
    """The size-agnostic part of one network (actor or critic): K templates per role."""

    def __init__(
        self, d_in: int, d_out: int, n_templates: int = 16, block: int = 16, generator: torch.Generator | None = None
    ):
        super().__init__()
        self.d_in, self.d_out, self.n_templates, self.block = d_in, d_out, n_templates, block
        k, p = n_templates, block

        def draw(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) / math.sqrt(shape[-1]))

        self.in_w, self.in_b = draw(k, p, d_in), nn.Parameter(torch.zeros(k, p))
        self.hid_w, self.hid_b = draw(k, p, p), nn.Parameter(torch.zeros(k, p))
        self.out_w, self.out_b = draw(k, d_out, p), nn.Parameter(torch.zeros(k, d_out))

    def roles(self, depth: int) -> list[tuple[Tensor, Tensor]]:
        """(weight templates, bias templates) for each of the depth+1 Linear layers."""
        hidden = [(self.hid_w, self.hid_b)] * (depth - 1)
        return [(self.in_w, self.in_b), *hidden, (self.out_w, self.out_b)]


class Scalers(nn.Module):
    """The size-specific part: one (weight, bias) scaler pair per Linear layer."""

    def __init__(self, templates: TemplateSet, widths: list[int], generator: torch.Generator | None = None):
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"hidden widths must be >= 1 and at least one layer, got {widths}")
        self.widths = list(widths)
        sizes = [templates.d_in, *widths, templates.d_out]
        k = templates.n_templates
        self.weight, self.bias = nn.ParameterList(), nn.ParameterList()
        for (t_w, _), n, m in zip(templates.roles(len(widths)), sizes[:-1], sizes[1:]):
            a, b = math.ceil(m / t_w.shape[1]), math.ceil(n / t_w.shape[2])
            # Scale so that an assembled weight starts at ~1/sqrt(fan_in), like a default init.
            std = 1.0 / (math.sqrt(n * k) * float(t_w.detach().std().clamp_min(1e-8)))
            self.weight.append(nn.Parameter(torch.randn(k, a, b, generator=generator) * std))
            self.bias.append(nn.Parameter(torch.zeros(k, a)))

    def count(self) -> int:
        return sum(p.numel() for p in self.parameters())


class KronMLP(nn.Module):
    """An MLP whose every layer is assembled from shared templates and its own scalers."""

    def __init__(
        self,
        templates: TemplateSet,
        widths: list[int],
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.templates = templates
        self.scalers = Scalers(templates, widths, generator)
        self.activation = activation
        self.sizes = [templates.d_in, *widths, templates.d_out]
        # Off for a network whose parameters are written through `.data` (SB3's polyak_update of
        # target networks): such writes leave the version counters the cache is keyed on unchanged.
        self.cache = True
        self._cache: dict[int, tuple[tuple, tuple[Tensor, Tensor]]] = {}

    def layer(self, i: int) -> tuple[Tensor, Tensor]:
        """Layer i's (W, b). Without gradients (rollouts, target networks) the result is kept
        until one of its tensors changes: the weights move only at optimizer steps."""
        t_w, t_b = self.templates.roles(len(self.scalers.widths))[i]
        s_w, s_b = self.scalers.weight[i], self.scalers.bias[i]
        m, n = self.sizes[i + 1], self.sizes[i]
        if torch.is_grad_enabled() or not self.cache:
            return assemble(s_w, t_w, m, n), assemble_bias(s_b, t_b, m)
        # _version counts in-place writes (optimizer steps, load_state_dict); data_ptr a move to another device
        key = tuple((t._version, t.data_ptr()) for t in (t_w, t_b, s_w, s_b))
        cached = self._cache.get(i)
        if cached is None or cached[0] != key:
            cached = self._cache[i] = (key, (assemble(s_w, t_w, m, n), assemble_bias(s_b, t_b, m)))
        return cached[1]

    def layers(self) -> list[tuple[Tensor, Tensor]]:
        return [self.layer(i) for i in range(len(self.sizes) - 1)]

    def forward(self, x: Tensor) -> Tensor:
        return mlp_forward(self.layers(), x, self.activation)

    @torch.no_grad()
    def materialize(self) -> list[tuple[Tensor, Tensor]]:
        """Plain (W, b) tensors: all a Linear layer needs after initialization."""
        return [(w.detach().clone(), b.detach().clone()) for w, b in self.layers()]


class PlainMLP(nn.Module):
    """An ordinary MLP given by its (W, b) layers: the `distill` baseline trains one."""

    def __init__(self, layers: list[tuple[Tensor, Tensor]], activation: str = "relu"):
        super().__init__()
        self.weight = nn.ParameterList([nn.Parameter(w.detach().clone()) for w, _ in layers])
        self.bias = nn.ParameterList([nn.Parameter(b.detach().clone()) for _, b in layers])
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        return mlp_forward(list(zip(self.weight, self.bias)), x, self.activation)

    @torch.no_grad()
    def materialize(self) -> list[tuple[Tensor, Tensor]]:
        return [(w.detach().clone(), b.detach().clone()) for w, b in zip(self.weight, self.bias)]


def mlp_forward(layers: list[tuple[Tensor, Tensor]], x: Tensor, activation: str) -> Tensor:
    act = ACTIVATIONS[activation]
    for i, (w, b) in enumerate(layers):
        x = F.linear(x, w, b)
        if i < len(layers) - 1:
            x = act(x)
    return x

"""Function-preserving rescaling of ReLU networks.

relu(c * z) = c * relu(z) for c > 0, so scaling one layer's weights and bias by c and
the next layer's weights by 1/c leaves the network's function unchanged. Chained over the
layers, this moves weight norm between layers while their product stays fixed: it can
give template-assembled weights the per-layer scale of a default initialization without
changing what the network computes."""

from __future__ import annotations

import math

from torch import Tensor

Layers = list[tuple[Tensor, Tensor]]  # (weight out x in, bias) per Linear layer, input first


def rebalance(layers: Layers, target_norms: list[float]) -> Layers:
    """Rescale `layers` (a ReLU MLP) so that the weight Frobenius norms are proportional to
    `target_norms`, with the same function and the same product of norms."""
    if len(target_norms) != len(layers):
        raise ValueError(f"{len(target_norms)} target norms for {len(layers)} layers")
    norms = [float(w.norm()) for w, _ in layers]
    if min(norms) == 0 or min(target_norms) <= 0:
        return [(w.clone(), b.clone()) for w, b in layers]
    # per-layer factors a_i = k * t_i / n_i with prod(a_i) = 1
    log_k = sum(math.log(n / t) for n, t in zip(norms, target_norms)) / len(layers)
    factors = [math.exp(log_k) * t / n for n, t in zip(norms, target_norms)]
    out, gain = [], 1.0  # gain: cumulative scale of the current layer's output
    for i, ((w, b), a) in enumerate(zip(layers, factors)):
        gain *= a
        if i == len(layers) - 1:
            gain = 1.0  # prod(a) == 1: the output layer restores the scale (up to rounding)
        out.append((w * a, b * gain))
    return out

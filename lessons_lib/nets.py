r"""Score networks: small models whose output has the shape of their input.

* :class:`LinearScore` — s(x) = A x + b, the family that contains the score of every Gaussian
  (A = −Σ⁻¹, b = Σ⁻¹μ); score-matching objectives have closed-form optima in it.
* :class:`ScoreMLP` — an MLP for low-dimensional points, optionally conditioned on the noise
  level σ (it then receives log σ as an extra input and its output f is divided by σ, s = f/σ,
  so that the σ²-weighted loss ½‖f + z‖² has a target of size one at every level; f itself is
  of order one only where ‖∇log p_σ‖ grows like 1/σ, off a thin data set or for σ well above
  the data's spread, while for a smooth low-dimensional density the score stays of order one
  at small σ and f = σ·s is small there: lesson 04, Think 5).
* :class:`EnergyMLP` — an energy-based model: an MLP E_θ(x) with one number per point; its
  score −∇ₓE_θ is a conservative field by construction (``model.score``), and the density
  e^{−E_θ}/Z_θ can be read off up to Z_θ.

Smooth activations (SiLU) keep the Jacobian differentiable, which implicit and sliced score
matching need.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import require_bool, require_count, require_tensor
from .autodiff import score_from_energy
from .noise import sigma_like

__all__ = ["LinearScore", "ScoreMLP", "EnergyMLP"]


def _points(module: nn.Module, x, dim: int) -> torch.Tensor:
    """x as the network takes it: a finite floating tensor of shape (B, dim) on the network's device."""
    device = next(module.parameters()).device
    require_tensor(x, "x", device=device)
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{type(module).__name__} expects points x of shape (B, {dim}), got {tuple(x.shape)}")
    return x


class LinearScore(nn.Module):
    """s(x) = A x + b on points of shape (B, d); starts at A = −I, b = 0 (a standard normal)."""

    def __init__(self, dim: int):
        super().__init__()
        dim = require_count(dim, "dim")
        self.A = nn.Parameter(-torch.eye(dim))
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _points(self, x, self.b.shape[0])
        return x @ self.A.T + self.b


class ScoreMLP(nn.Module):
    """An MLP score model on points of shape (B, d).

    ``sigma_conditioned=False``: ``forward(x)``. ``sigma_conditioned=True``:
    ``forward(x, sigma)`` with σ a number or a (B,) tensor; the network sees log σ and returns
    net(x, log σ)/σ.
    """

    def __init__(self, dim: int, hidden: int = 64, n_layers: int = 2, sigma_conditioned: bool = False):
        super().__init__()
        dim = require_count(dim, "dim")
        hidden = require_count(hidden, "hidden")
        n_layers = require_count(n_layers, "n_layers")
        self.dim = dim
        self.sigma_conditioned = require_bool(sigma_conditioned, "sigma_conditioned")
        layers: list[nn.Module] = []
        width = dim + (1 if sigma_conditioned else 0)
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        x = _points(self, x, self.dim)
        if not self.sigma_conditioned:
            if sigma is not None:
                raise ValueError("this ScoreMLP is not σ-conditioned; build it with sigma_conditioned=True")
            return self.net(x)
        if sigma is None:
            raise ValueError("this ScoreMLP is σ-conditioned: call it as model(x, sigma)")
        s = sigma_like(sigma, x)
        return self.net(torch.cat([x, torch.log(s)], dim=1)) / s


class EnergyMLP(nn.Module):
    """An energy-based model E_θ(x) on points of shape (B, d): ``forward(x)`` returns the
    energies, shape (B,); ``score(x)`` returns s_θ(x) = −∇ₓE_θ(x), shape (B, d), by autograd
    (differentiable with respect to θ, so score-matching losses can train it)."""

    def __init__(self, dim: int, hidden: int = 64, n_layers: int = 2):
        super().__init__()
        dim = require_count(dim, "dim")
        hidden = require_count(hidden, "hidden")
        n_layers = require_count(n_layers, "n_layers")
        self.dim = dim
        layers: list[nn.Module] = []
        width = dim
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _points(self, x, self.dim)
        return self.net(x)[:, 0]

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return score_from_energy(self)(x)

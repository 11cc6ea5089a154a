r"""The noise-conditional score network for 1×28×28 images (MNIST).

:class:`NCSNUNet` is a compact U-Net whose residual blocks are modulated by an embedding of
log σ, wrapped in one of two preconditionings: NCSNv2's output scaling by 1/σ (Song & Ermon 2020),
s(x, σ) = F(x, log σ)/σ, or EDM's denoiser D = c_skip·x + c_out·F(c_in·x, log σ) (Karras et al.
2022). The parameter names are the keys of the state dict in ``checkpoints/ncsn_mnist.pt``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validate import require_choice, require_count, require_positive, require_tensor
from ..noise import sigma_like

__all__ = ["NCSNUNet"]


class _SigmaEmbedding(nn.Module):
    """log σ → a vector: random-free Fourier features of log σ followed by a small MLP."""

    def __init__(self, dim: int, n_freqs: int = 8):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs, dtype=torch.float32) * math.pi / 8)
        self.mlp = nn.Sequential(nn.Linear(2 * n_freqs + 1, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())

    def forward(self, log_sigma: torch.Tensor) -> torch.Tensor:
        angles = log_sigma[:, None] * self.freqs
        return self.mlp(torch.cat([log_sigma[:, None], angles.sin(), angles.cos()], dim=1))


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class _ResBlock(nn.Module):
    """GroupNorm–SiLU–conv twice; the σ embedding scales and shifts the features in between (FiLM)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.act(h))


class NCSNUNet(nn.Module):
    r"""Noise-conditional score network s_θ(x, σ) ≈ ∇ₓ log p_σ(x) for images of shape (B, 1, 28, 28).

    A U-Net F with three resolutions (28, 14, 7; ``channels`` features at each), one residual
    block per resolution on the way down and up, skip connections between them, and a middle
    block. Every block is conditioned on σ through an embedding of log σ (FiLM).
    ``forward(x, sigma)``: σ a number (one level for the batch) or a (B,) tensor. :meth:`unet` is
    F itself. How F's output becomes a score is the ``preconditioning``:

    * ``"ncsnv2"``: s_θ(x, σ) = F(x, log σ)/σ. The division by σ is Song & Ermon 2020's (NCSNv2,
      whose network F(x) is not told σ at all; the 2019 NCSN told its network the level's index);
      feeding F log σ as well is this course's choice. F predicts −z for x = y + σz, a target of
      order one at every level.
    * ``"edm"`` (Karras, Aittala, Aila & Laine 2022, "Elucidating the design space of
      diffusion-based generative models", Table 1): a denoiser
      D(x, σ) = c_skip·x + c_out·F(c_in·x, log σ) with c_skip = σ_d²/(σ² + σ_d²),
      c_out = σσ_d/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²), σ_d = ``sigma_data`` (the data's RMS), and
      the score by Tweedie's formula, s = (D − x)/σ² = −x/(σ² + σ_d²) + σ_d·F/(σ√(σ² + σ_d²)).
      F's input and its training target both have unit variance at every σ.
      (EDM feeds F with ¼ ln σ; here the embedding's own first layer scales ln σ.)
    """

    PRECONDITIONINGS = ("ncsnv2", "edm")

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 64), emb_dim: int = 64,
                 preconditioning: str = "ncsnv2", sigma_data: float | None = None):
        super().__init__()
        if not isinstance(channels, tuple | list) or len(channels) != 3:
            raise ValueError(f"channels must give 3 widths (for 28, 14 and 7 pixels), got {channels!r}")
        c1, c2, c3 = (require_count(c, "channels") for c in channels)
        emb_dim = require_count(emb_dim, "emb_dim")
        require_choice(preconditioning, "preconditioning", self.PRECONDITIONINGS)
        if preconditioning == "edm":
            if sigma_data is None:
                raise ValueError("the EDM preconditioning needs sigma_data, the RMS of the training data")
            sigma_data = require_positive(sigma_data, "sigma_data")
        elif sigma_data is not None:
            raise ValueError("sigma_data is used only by preconditioning='edm'")
        self.preconditioning, self.sigma_data = preconditioning, sigma_data
        self.config = {"channels": [c1, c2, c3], "emb_dim": emb_dim}
        if preconditioning != "ncsnv2":
            self.config.update(preconditioning=preconditioning, sigma_data=sigma_data)
        self.embed = _SigmaEmbedding(emb_dim)
        self.inp = nn.Conv2d(1, c1, 3, padding=1)
        self.down1 = _ResBlock(c1, c1, emb_dim)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2 = _ResBlock(c1, c2, emb_dim)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)
        self.mid = _ResBlock(c2, c3, emb_dim)
        self.up2 = _ResBlock(c3 + c2, c2, emb_dim)
        self.up1 = _ResBlock(c2 + c1, c1, emb_dim)
        self.out = nn.Sequential(_norm(c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1))

    def unet(self, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
        """F(x, log σ): the U-Net's output before the preconditioning; ``log_sigma`` of shape (B,)."""
        emb = self.embed(log_sigma)
        h1 = self.down1(self.inp(x), emb)  # 28×28
        h2 = self.down2(self.pool1(h1), emb)  # 14×14
        h = self.mid(self.pool2(h2), emb)  # 7×7
        h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up2(torch.cat([h, h2], dim=1), emb)
        h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up1(torch.cat([h, h1], dim=1), emb)
        return self.out(h)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        require_tensor(x, "x", device=self.inp.weight.device)
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"NCSNUNet expects images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        s = sigma_like(sigma, x)
        log_sigma = torch.log(s.view(-1))
        if self.preconditioning == "ncsnv2":
            return self.unet(x, log_sigma) / s
        var = s**2 + self.sigma_data**2
        return -x / var + self.sigma_data * self.unet(x * var.rsqrt(), log_sigma) / (s * var.sqrt())

    def denoise(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """D(x, σ) = x + σ²·s_θ(x, σ): the network's estimate of E[clean image | x] (Tweedie)."""
        return x + sigma_like(sigma, x) ** 2 * self(x, sigma)

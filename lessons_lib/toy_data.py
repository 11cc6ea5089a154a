"""The toy densities of the lessons, with exact scores (:class:`~lessons_lib.densities.GaussianMixture`).

* :func:`mixture_1d` — 0.1·N(−3, 1) + 0.9·N(3, 1), the 1:9 mixture that plain Langevin samples
  with the wrong weights (lessons 01, 04, 05);
* :func:`mixture_2d` — a 2-D mixture of three anisotropic Gaussians (lessons 01–03, 07).
"""

from __future__ import annotations

from .densities import GaussianMixture

__all__ = ["mixture_1d", "mixture_2d"]


def mixture_1d() -> GaussianMixture:
    """0.1·N(−3, 1) + 0.9·N(3, 1)."""
    return GaussianMixture([0.1, 0.9], [[-3.0], [3.0]], [1.0, 1.0])


def mixture_2d() -> GaussianMixture:
    """Three 2-D Gaussians with weights 0.5, 0.3, 0.2 and different shapes."""
    return GaussianMixture(
        [0.5, 0.3, 0.2],
        [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]],
        [
            [[0.6, 0.25], [0.25, 0.4]],
            [[0.4, -0.2], [-0.2, 0.6]],
            [[0.8, 0.0], [0.0, 0.2]],
        ],
    )

"""Figures of lessons 01–03: the quiver draws the score's direction, the error map the error."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lessons_lib.densities import Gaussian  # noqa: E402
from lessons_lib.plotting import grid_2d, plot_score_error, plot_score_field, score_error_by_region, score_error_grid  # noqa: E402


def test_score_field_arrows_have_one_length_and_the_direction_of_the_score():
    gauss = Gaussian([1.0, -0.5], [[1.0, 0.8], [0.8, 2.0]])
    fig, ax = plt.subplots()
    q = plot_score_field(ax, gauss.score, xlim=(-5, 5), ylim=(-5, 5), n=11)
    _, _, pts = grid_2d((-5, 5), (-5, 5), 11)
    s = gauss.score(pts.double()).numpy()
    uv = np.stack([q.U, q.V], axis=-1).reshape(-1, 2)
    np.testing.assert_allclose(np.hypot(uv[:, 0], uv[:, 1]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(uv, s / np.linalg.norm(s, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(q.get_array().ravel(), np.log1p(np.linalg.norm(s, axis=1)), rtol=1e-5)
    assert q.scale == 1 / (0.8 * 1.0)  # unit arrows drawn at 0.8 of the grid spacing (1.0 here)
    plt.close(fig)


def test_score_error_grid_is_the_norm_of_the_difference():
    gauss = Gaussian([0.0, 0.0], 1.0)
    X, Y, error, density = score_error_grid(lambda x: torch.zeros_like(x), gauss.score, gauss.log_prob, n=7)
    # zero model: the error is ‖∇log p‖ = ‖x‖, the density exp(−‖x‖²/2)/2π
    r = np.hypot(X.numpy(), Y.numpy())
    np.testing.assert_allclose(error, r, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(density, np.exp(-r**2 / 2) / (2 * np.pi), rtol=1e-5)


def test_plot_score_error_marks_the_low_density_region():
    gauss = Gaussian([0.0, 0.0], 1.0)
    fig, ax = plt.subplots()
    mesh, contour = plot_score_error(ax, lambda x: torch.zeros_like(x), gauss.score, gauss.log_prob, n=50,
                                     low_density=1e-3)
    _, _, error, density = score_error_grid(lambda x: torch.zeros_like(x), gauss.score, gauss.log_prob, n=50)
    np.testing.assert_allclose(mesh.get_array().reshape(50, 50), error)
    np.testing.assert_allclose(contour.levels, [1e-3 * density.max()])
    plt.close(fig)


def test_score_error_by_region_splits_the_grid_at_the_low_density_line():
    gauss = Gaussian(torch.zeros(2), torch.eye(2))

    def wrong_far_out(x):  # exact where p ≥ 1e-3·max p (|x| ≤ 3.72), off by 1 in x₁ beyond
        rare = x.double().norm(dim=-1, keepdim=True) ** 2 > 2 * math.log(1000)
        return gauss.score(x) + rare.double() * torch.tensor([1.0, 0.0], dtype=torch.float64)

    inside, outside = score_error_by_region(wrong_far_out, gauss.score, gauss.log_prob, (-5, 5), (-5, 5), n=101)
    assert inside == 0.0 and outside == 1.0

"""The explorers of sampling, driven headlessly. The Langevin explorer (lesson 05): set its
sliders, compare the chains with the library's ``langevin``. The trajectory explorer (lesson 06):
set the slider, compare the image it shows with the grid of that stored state computed
independently; no checkpoint needed, a random trajectory has the shape an annealed sampler
returns with ``record_every=n_steps_each``."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from lessons_lib.explorers import LangevinExplorer, TrajectoryExplorer
from lessons_lib.noise import geometric_sigmas
from lessons_lib.plotting import image_grid
from lessons_lib.samplers import annealed_langevin, langevin
from lessons_lib.toy_data import mixture_1d, mixture_2d
from lessons_lib.utils import make_generator

# --- LangevinExplorer ---


@pytest.fixture
def langevin_explorer():
    x_init = 3 * torch.randn(200, 2, generator=make_generator(0))
    return LangevinExplorer(mixture_2d(), x_init, step_size=0.05, n_steps=50, seed=1), x_init


def test_langevin_sliders_redraw_the_chains(langevin_explorer):
    explorer, x_init = langevin_explorer
    explorer.step_slider.value = 0.1
    explorer.steps_slider.value = 100
    eps, n = explorer.step_slider.value, explorer.steps_slider.value
    expected = langevin(mixture_2d().score, x_init=x_init, step_size=eps, n_steps=n, generator=make_generator(1))
    np.testing.assert_allclose(explorer.scatter.get_offsets(), expected.numpy(), rtol=1e-6)
    assert torch.equal(explorer.samples, expected)
    assert "chains per component" in explorer.message.value
    assert "weights 0.50 / 0.30 / 0.20" in explorer.message.value


def test_too_large_a_step_shows_the_divergence_message(langevin_explorer):
    explorer, _ = langevin_explorer
    explorer.step_slider.value = 2.5
    assert "Diverged" in explorer.message.value
    assert "step size" in explorer.message.value
    assert explorer.samples is None
    assert len(explorer.scatter.get_offsets()) == 0  # nothing (and no NaN) plotted
    explorer.step_slider.value = 0.05  # and it recovers
    assert "chains per component" in explorer.message.value
    assert np.isfinite(explorer.scatter.get_offsets()).all()


def test_message_says_when_the_step_is_beyond_2v_and_when_chains_run_away():
    """The lesson's setting: beyond 2v = 0.4 for the narrowest component the chains stay finite
    (wrongly weighted) and the message says so; from ε ≈ 1.1 the sampler stops them."""
    start = 3.0 * torch.randn(2000, 2, generator=make_generator(2))[:500]
    explorer = LangevinExplorer(mixture_2d(), start, step_size=0.05, n_steps=200, seed=3)
    assert explorer.narrowest_variance == pytest.approx(0.2)
    assert "2v" not in explorer.message.value
    explorer.step_slider.value = 0.8
    assert "ε &gt; 2v = 0.40" in explorer.message.value and "Diverged" not in explorer.message.value
    explorer.step_slider.value = 1.12
    assert "Diverged" in explorer.message.value


def test_zero_steps_shows_the_starting_points(langevin_explorer):
    explorer, x_init = langevin_explorer
    explorer.steps_slider.value = 0
    np.testing.assert_allclose(explorer.scatter.get_offsets(), x_init.numpy())


def test_langevin_explorer_rejects_a_1d_density():
    with pytest.raises(ValueError, match="2-D density"):
        LangevinExplorer(mixture_1d(), torch.zeros(10, 1))


# --- TrajectoryExplorer ---

SIGMAS = geometric_sigmas(sigma_max=10.0, sigma_min=0.01, n=5)


def _trajectory(n_states, batch=6, seed=0):
    g = make_generator(seed)
    return 0.5 + 0.8 * torch.randn(n_states, batch, 1, 28, 28, generator=g)


def _grid_by_hand(images, nrow, pad=2):
    """The tiled, clipped canvas that image_grid documents, built with numpy."""
    imgs = images[:, 0].numpy()
    b, h, w = imgs.shape
    ncol = min(nrow, b)
    nrows = -(-b // ncol)
    canvas = np.ones((nrows * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    for i in range(b):
        r, c = divmod(i, ncol)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = imgs[i]
    return np.clip(canvas, 0.0, 1.0)


@pytest.fixture
def explorer():
    traj = _trajectory(len(SIGMAS) + 2)
    yield TrajectoryExplorer(traj, SIGMAS, nrow=4), traj
    plt.close("all")


@pytest.mark.parametrize("state", [0, 1, 3, 5, 6, 2])
def test_slider_shows_the_grid_of_that_state(explorer, state):
    ex, traj = explorer
    image = ex.image
    ex.slider.value = state
    assert ex.image is image, "the explorer must update its AxesImage, not make a new one"
    assert len(ex.ax.images) == 1
    shown = np.asarray(ex.image.get_array())
    np.testing.assert_array_equal(shown, _grid_by_hand(traj[state], nrow=4))
    fig, ax = plt.subplots()
    np.testing.assert_array_equal(shown, np.asarray(image_grid(ax, traj[state], nrow=4).get_array()))
    assert ex.last_update_seconds > 0


def test_titles_and_messages_name_the_state(explorer):
    ex, traj = explorer
    ex.slider.value = 0
    assert ex.ax.get_title() == "start: uniform noise"
    assert ex.message.value.startswith("start: uniform noise")
    for level in range(1, len(SIGMAS) + 1):
        ex.slider.value = level
        expected = f"after level {level} of {len(SIGMAS)}: σ = {float(SIGMAS[level - 1]):.3g}"
        assert ex.ax.get_title() == expected
        assert ex.message.value.startswith(expected)
        lo, hi = float(traj[level].min()), float(traj[level].max())
        assert f"from {lo:.2f} to {hi:.2f}" in ex.message.value
    ex.slider.value = len(SIGMAS) + 1
    assert ex.ax.get_title().startswith("denoised (Tweedie)")
    assert "denoised (Tweedie)" in ex.message.value
    assert ex.label(1).endswith("σ = 10") and ex.label(len(SIGMAS)).endswith("σ = 0.01")


def test_opens_on_the_last_state_and_the_slider_covers_every_state(explorer):
    ex, traj = explorer
    assert (ex.slider.min, ex.slider.max, ex.slider.value) == (0, len(traj) - 1, len(traj) - 1)
    np.testing.assert_array_equal(ex.image.get_array(), _grid_by_hand(traj[-1], nrow=4))


def test_without_the_denoised_state():
    traj = _trajectory(len(SIGMAS) + 1)
    ex = TrajectoryExplorer(traj, SIGMAS.tolist())
    assert not ex.denoised and ex.slider.max == len(SIGMAS)
    ex.slider.value = ex.slider.max
    assert ex.ax.get_title().startswith(f"after level {len(SIGMAS)} of {len(SIGMAS)}")
    plt.close("all")


def test_a_real_sampler_trajectory_fits():
    """The shape annealed_langevin stores with record_every = n_steps_each is accepted."""
    x_init = torch.rand(3, 1, 28, 28, generator=make_generator(1))
    _, traj = annealed_langevin(lambda x, s: -(x - 0.5) / (s**2 + 0.1), x_init=x_init, sigmas=SIGMAS, n_steps_each=2,
                                step_size=1e-4, generator=make_generator(2), record_every=2, denoise=True)
    ex = TrajectoryExplorer(traj, SIGMAS)
    assert ex.denoised and len(ex.grids) == len(SIGMAS) + 2
    ex.slider.value = 0
    np.testing.assert_array_equal(ex.image.get_array(), _grid_by_hand(x_init, nrow=8))
    plt.close("all")


@pytest.mark.parametrize(
    "traj, sigmas, match",
    [
        (torch.rand(7, 6, 28, 28), SIGMAS, r"shape \(T, B, 1, H, W\)"),
        (torch.rand(7, 6, 3, 28, 28), SIGMAS, r"shape \(T, B, 1, H, W\)"),
        (torch.rand(7, 0, 1, 28, 28), SIGMAS, r"shape \(T, B, 1, H, W\)"),
        (torch.rand(4, 6, 1, 28, 28), SIGMAS, "over 5 σ levels stores 6 states .* or 7 .* got 4"),
        (torch.rand(9, 6, 1, 28, 28), SIGMAS, "got 9; record it with record_every = n_steps_each"),
        (torch.rand(7, 6, 1, 28, 28), SIGMAS.flip(0), "largest to smallest"),
        (torch.full((7, 6, 1, 28, 28), float("nan")), SIGMAS, "NaN"),
    ],
    ids=["4-d", "3-channels", "empty-batch", "too-short", "too-long", "sigmas-increasing", "nan"],
)
def test_bad_arguments_raise_clear_errors(traj, sigmas, match):
    with pytest.raises(ValueError, match=match):
        TrajectoryExplorer(traj, sigmas)

"""Bad input to the mathematics layer: a clear error of our type that names the argument (issue 33).

Each row: a label, the call, the argument the message must name, the error type. Then: no public
function returns a non-finite tensor for finite input, and the divergence check ("left the
scale") tells a wrong score from a too-large step without tripping on the lessons' runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lessons_lib import autodiff, densities, edm, losses, nets, noise, plotting, samplers, sde, stats, training, utils
from lessons_lib._sampling import SCALE_MULTIPLE, DivergenceError
from lessons_lib._validate import require_count, require_positive, require_real, require_seed, require_tensor
from lessons_lib.toy_data import mixture_1d, mixture_2d

NAN = math.nan
X = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
X_NAN = X.clone()
X_NAN[0, 0] = NAN
MIX = mixture_2d()
MLP = nets.ScoreMLP(2, hidden=8)
MLP_S = nets.ScoreMLP(2, hidden=8, sigma_conditioned=True)
S = sde.VESDE(sigma_max=5.0, sigma_min=0.01)
KS = noise.karras_sigmas(5.0, 0.01, 4)


def score(x):
    return -x


def score_s(x, sigma):
    return -x / (1 + sigma**2)


ROWS = [
    # validation layer itself
    ("count None", lambda: require_count(None, "n_steps"), "n_steps"),
    ("count inf", lambda: require_count(math.inf, "n_steps"), "n_steps"),
    ("count bool", lambda: require_count(True, "n"), "n"),
    ("count str", lambda: require_count("3", "n"), "n"),
    ("seed too large for torch", lambda: require_seed(2**64), "seed"),
    ("seed negative", lambda: require_seed(-1), "seed"),
    ("real None", lambda: require_real(None, "p_mean"), "p_mean"),
    ("real numpy nan", lambda: require_real(np.float32("nan"), "p_mean"), "p_mean"),
    ("positive bool", lambda: require_positive(True, "lr"), "lr"),
    ("tensor numpy", lambda: require_tensor(np.zeros(3), "x"), "torch.as_tensor"),
    ("tensor int dtype", lambda: require_tensor(torch.zeros(3, dtype=torch.long), "x"), "x.float()"),
    ("tensor meta device", lambda: require_tensor(torch.empty(3, device="meta"), "x"), "x is a meta tensor"),
    # densities
    ("Gaussian cov nan", lambda: densities.Gaussian([0.0], NAN), "cov"),
    ("Gaussian.score numpy", lambda: densities.Gaussian([0.0, 0.0], 1.0).score(X.numpy()), "x"),
    ("mixture.score int tensor", lambda: MIX.score(torch.zeros(3, 2, dtype=torch.long)), "x"),
    ("mixture.sample n None", lambda: MIX.sample(None), "n"),
    ("mixture.sample generator", lambda: MIX.sample(3, generator=3), "generator"),
    ("perturbed sigma str", lambda: MIX.perturbed("0.5"), "sigma"),
    ("density_from_score_1d score_fn", lambda: densities.density_from_score_1d(None, torch.linspace(0, 1, 5)),
     "score_fn"),
    # autodiff
    ("jacobian_trace x nan", lambda: autodiff.jacobian_trace(score, X_NAN), "x"),
    ("hutchinson_trace kind", lambda: autodiff.hutchinson_trace(score, X, kind="bogus"), "kind"),
    ("hutchinson_variance A nan", lambda: autodiff.hutchinson_variance(torch.full((2, 2), NAN)), "A"),
    ("sample_projections shape", lambda: autodiff.sample_projections(None), "shape"),
    # noise
    ("geometric_sigmas n None", lambda: noise.geometric_sigmas(10.0, 0.1, None), "n"),
    ("karras_sigmas rho nan", lambda: noise.karras_sigmas(10.0, 0.1, 5, rho=NAN), "rho"),
    ("perturb z nan", lambda: noise.perturb(X, 0.5, z=X_NAN), "z"),
    ("validate_sigmas increasing", lambda: noise.validate_sigmas([0.5, 1.0]), "sigmas"),
    # losses
    ("dsm_loss x nan", lambda: losses.dsm_loss(MLP, X_NAN, 0.5), "x"),
    ("dsm_loss score_fn None", lambda: losses.dsm_loss(None, X, 0.5), "score_fn"),
    ("edm_loss p_mean nan", lambda: losses.edm_loss(MLP_S, X, 0.5, p_mean=NAN), "p_mean"),
    ("edm_loss sigma_data inf", lambda: losses.edm_loss(MLP_S, X, math.inf), "sigma_data"),
    ("ssm_loss reduction", lambda: losses.ssm_loss(MLP, X, reduction="sum"), "reduction"),
    ("ncsn_loss sigmas", lambda: losses.ncsn_loss(MLP_S, X, [0.5, 1.0]), "sigmas"),
    # nets
    ("ScoreMLP numpy", lambda: MLP(X.numpy()), "x"),
    ("ScoreMLP int tensor", lambda: MLP(torch.zeros(3, 2, dtype=torch.long)), "x"),
    ("ScoreMLP meta device", lambda: MLP(torch.empty(3, 2, device="meta")), "x"),
    ("ScoreMLP hidden None", lambda: nets.ScoreMLP(2, hidden=None), "hidden"),
    ("LinearScore dim str", lambda: nets.LinearScore("2"), "dim"),
    # samplers
    ("langevin n_steps None", lambda: samplers.langevin(score, X, 0.1, None), "n_steps"),
    ("langevin step_size inf", lambda: samplers.langevin(score, X, math.inf, 3), "step_size"),
    ("langevin x_init nan", lambda: samplers.langevin(score, X_NAN, 0.1, 3), "x_init"),
    ("langevin score_fn None", lambda: samplers.langevin(None, X, 0.1, 3), "score_fn"),
    ("annealed denoise str", lambda: samplers.annealed_langevin(score_s, X, [1.0, 0.5], 2, denoise="yes"),
     "denoise"),
    ("inpainting known_noise", lambda: samplers.annealed_inpainting(score_s, X, torch.ones(2), [1.0], 1,
                                                                    known_noise="bogus"), "known_noise"),
    # sde
    ("VESDE.sigma t str", lambda: S.sigma("0.5"), "t"),
    ("prior_sample shape", lambda: S.prior_sample(None), "shape"),
    ("ode_sample method", lambda: sde.ode_sample(score_s, S, X, 2, method=None), "method"),
    ("ode_encode times str", lambda: sde.ode_encode(score_s, S, X, times="ab"), "times"),
    ("ode_log_likelihood divergence", lambda: sde.ode_log_likelihood(MLP_S, S, X, 2, divergence="bogus"),
     "divergence"),
    ("bits_per_dim log_p numpy", lambda: sde.bits_per_dim(np.zeros(3), 784), "log_p"),
    # edm
    ("heun churn nan", lambda: edm.heun_sample(score_s, X, KS, churn=NAN), "churn"),
    ("heun churn_range reversed", lambda: edm.heun_sample(score_s, X, KS, churn=1.0, churn_range=(50, 0.05)),
     "churn_range"),
    ("heun sigmas str", lambda: edm.heun_sample(score_s, X, "ab"), "sigmas"),
    # training
    ("train seed too large", lambda: training.train(MLP, lambda m, b, g: m(b).sum(), X, n_steps=1, seed=2**70,
                                                     progress=False), "seed"),
    ("train data nan", lambda: training.train(MLP, lambda m, b, g: m(b).sum(), X_NAN, n_steps=1, progress=False),
     "data"),
    ("train data numpy", lambda: training.train(MLP, lambda m, b, g: m(b).sum(), X.numpy(), n_steps=1,
                                                 progress=False), "data"),
    ("train model str", lambda: training.train("net", lambda m, b, g: 0, X, n_steps=1, progress=False), "model"),
    ("ema_model decay nan", lambda: training.ema_model(MLP, NAN), "ema_decay"),
    # stats, utils, plotting
    ("mean_and_se nan", lambda: stats.mean_and_se([1.0, NAN]), "values"),
    ("mean_and_sd None", lambda: stats.mean_and_sd(None), "values"),
    ("seed_everything None", lambda: utils.seed_everything(None), "seed"),
    ("make_generator too large", lambda: utils.make_generator(2**64), "seed"),
    ("get_device int", lambda: utils.get_device(3), "device"),
    ("grid_2d xlim reversed", lambda: plotting.grid_2d((1, -1)), "xlim"),
    ("grid_2d n None", lambda: plotting.grid_2d(n=None), "n"),
]


@pytest.mark.parametrize("label, call, name", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_a_clear_error_naming_the_argument(label, call, name):
    with pytest.raises(ValueError) as info:
        call()
    assert name in str(info.value), str(info.value)


def test_the_optimisers_own_learning_rate_is_quoted():
    model = nets.ScoreMLP(2, hidden=4)
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    with pytest.raises(ValueError, match=r"lr = 0\.5"):
        training.train(model, lambda m, b, g: m(b).sum() * NAN, X, n_steps=1, lr=1e-3, optimizer=opt, progress=False)


FINITE_CALLS = [
    ("Gaussian.score", lambda: densities.Gaussian([0.0, 0.0], 1.0).score(X)),
    ("mixture.log_prob", lambda: MIX.log_prob(X)),
    ("mixture.posterior_mean", lambda: MIX.posterior_mean(X, 0.5)),
    ("noisy_score", lambda: densities.noisy_score(MIX)(X, 0.1)),
    ("jacobian_trace", lambda: autodiff.jacobian_trace(MLP, X)),
    ("hutchinson_trace", lambda: autodiff.hutchinson_trace(MLP, X)),
    ("geometric_sigmas", lambda: noise.geometric_sigmas(10.0, 0.01, 10)),
    ("karras_sigmas", lambda: noise.karras_sigmas(10.0, 0.01, 10)),
    ("perturb", lambda: noise.perturb(X, 0.5)[0]),
    ("esm_loss", lambda: losses.esm_loss(MLP, X, MIX.score)),
    ("ism_loss", lambda: losses.ism_loss(MLP, X)),
    ("ssm_vr_loss", lambda: losses.ssm_vr_loss(MLP, X)),
    ("ncsn_loss", lambda: losses.ncsn_loss(MLP_S, X, [1.0, 0.1])),
    ("edm_loss", lambda: losses.edm_loss(MLP_S, X, 0.5)),
    ("langevin", lambda: samplers.langevin(MIX.score, X, 0.05, 20)),
    ("annealed_langevin", lambda: samplers.annealed_langevin(densities.noisy_score(MIX), X, [1.0, 0.1], 5,
                                                             step_size=1e-3, denoise=True)),
    ("reverse_sde_sample", lambda: sde.reverse_sde_sample(densities.noisy_score(MIX), S, S.prior_sample((8, 2)), 10)),
    ("pc_sample", lambda: sde.pc_sample(densities.noisy_score(MIX), S, S.prior_sample((8, 2)), 5)),
    ("ode_sample", lambda: sde.ode_sample(densities.noisy_score(MIX), S, S.prior_sample((8, 2)), 5)),
    ("ode_log_likelihood", lambda: sde.ode_log_likelihood(MLP_S, S, X[:2], 2)),
    ("heun_sample", lambda: edm.heun_sample(densities.noisy_score(MIX), 5.0 * X, KS)),
]


@pytest.mark.parametrize("label, call", FINITE_CALLS, ids=[r[0] for r in FINITE_CALLS])
def test_no_public_function_returns_non_finite_values_for_finite_input(label, call):
    out = call()
    assert torch.isfinite(torch.as_tensor(out)).all(), label


# --------------------------------------------------------------------------- divergence = left the scale
def test_an_unstable_step_is_a_divergence_naming_the_step_size_before_the_values_explode():
    target = densities.Gaussian([0.0], 1.0)  # stable only for ε < 2
    with pytest.raises(DivergenceError, match=r"left the scale.*step size ε = 2\.5.*too large") as info:
        samplers.langevin(target.score, torch.ones(50, 1), 2.5, 200, generator=utils.make_generator(0))
    assert f"{SCALE_MULTIPLE:g} × R" in str(info.value) and "score was finite" in str(info.value)


def test_a_nan_score_blames_the_score_not_the_step_size():
    for run in (lambda: samplers.langevin(lambda x: x * NAN, X, 0.1, 3),
                lambda: samplers.annealed_langevin(lambda x, s: x * NAN, X, [1.0], 2),
                lambda: sde.ode_sample(lambda x, s: x * NAN, S, X, 2),
                lambda: edm.heun_sample(lambda x, s: x * NAN, X, KS)):
        with pytest.raises(DivergenceError, match="score_fn returned NaN") as info:
            run()
        assert "a smaller step size would not help" in str(info.value)
        assert "step size ε" not in str(info.value)


def test_sde_and_heun_samplers_stop_when_the_chain_leaves_sigma_max_s_scale():
    runaway = lambda x, s: 1e6 * x  # noqa: E731 - finite, but pushes the chain outwards
    with pytest.raises(DivergenceError, match="left the scale.*more steps"):
        sde.ode_sample(runaway, S, S.prior_sample((4, 2)), 3)
    with pytest.raises(DivergenceError, match="Heun sampler diverged: it left the scale"):
        edm.heun_sample(lambda x, s: 1e3 * x, 5.0 * X, KS)


def test_the_lessons_legitimate_runs_stay_on_their_scale():
    # lesson 05: a Gaussian of variance 1 at ε up to 1.5 (< 2v), 20,000 chains from 0, and the
    # 2-D mixture at ε = 0.05 from a broad start; the annealed chain of lesson 05 on the 1-D mixture
    gauss = densities.Gaussian([0.0], 1.0)
    x = samplers.langevin(gauss.score, torch.zeros(20_000, 1, dtype=torch.float64), 1.5, 300,
                          generator=utils.make_generator(1))
    assert torch.isfinite(x).all()
    start = 3.0 * torch.randn(2000, 2, generator=utils.make_generator(2))
    samplers.langevin(MIX.score, start, 0.05, 200, generator=utils.make_generator(3))
    broad = 8 * torch.rand(2000, 1, generator=utils.make_generator(4)) - 4
    samplers.annealed_langevin(densities.noisy_score(mixture_1d()), broad, noise.geometric_sigmas(10.0, 0.1, 10),
                               n_steps_each=100, step_size=0.01, generator=utils.make_generator(9))

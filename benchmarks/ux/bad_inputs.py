"""A careless student's survey of the public API and the MNIST command line (issue 33).

Throws a few hundred bad inputs (wrong types, shapes, dtypes, devices, non-finite values,
out-of-range counts and reals, corrupt or foreign files, bad CLI flags) at lessons_lib and
classifies each outcome:

* ``clear``: our error type (a ``ValueError``, ``DivergenceError``, ``FileNotFoundError`` or
  ``MNISTError``) whose message names the argument; for the CLI: exit code 2, one line on stderr
  naming the flag, no traceback, nothing written;
* ``unclear``: another exception (torch's, ``int()``'s, a ``KeyError``), or ours without the name;
* ``silent``: no error at all (a NaN or absurd result, a file that cannot be read back);
* ``crash``: for the CLI, a traceback or an exit code other than 2; for the API, an exception
  that is not an ``Exception`` (or a left-behind temporary file).

    .venv/bin/python -m benchmarks.ux.bad_inputs            # counts, then every non-clear row
    .venv/bin/python -m benchmarks.ux.bad_inputs --no-cli   # the API only (seconds)

The cases are generated from a table of public calls, each with valid arguments and the kind of
each argument (count, positive real, tensor batch, ...): every argument is replaced in turn by each
bad value of its kind. A survey, not a test (``tests/*/test_bad_inputs.py`` are the tests).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]

OURS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError)


def _ours() -> tuple[type[BaseException], ...]:
    from lessons_lib.mnist.data import MNISTError

    return (*OURS, MNISTError)


@dataclass
class Case:
    label: str
    names: tuple[str, ...]          # the message must name one of these
    call: Callable[[], object]
    check: Callable[[object], str | None] | None = None   # a returned value judged: None = silent


# --------------------------------------------------------------------------- bad values by kind
def _meta_tensor(shape):
    return torch.empty(shape, device="meta")


BAD = {
    "count": [None, -1, 0, 2.5, "3", True, math.inf, math.nan],
    "count0": [None, -1, 2.5, "3", True, math.inf],
    "seed": [None, -1, 1.5, "0", 2**70, True],
    "positive": [None, 0.0, -1.0, math.nan, math.inf, "1", True, np.float32("nan")],
    "real": [None, math.nan, math.inf, "a", True],
    "sigma": [None, 0.0, -0.5, math.nan, math.inf, "0.5", True],
    "fn": [None, 3, "score"],
}


def _bad_batches(shape):
    """Bad values for a float batch of ``shape``."""
    nan = torch.zeros(shape)
    nan.view(-1)[0] = math.nan
    return [None, np.zeros(shape, dtype=np.float32), torch.zeros(shape).tolist(), torch.zeros(shape, dtype=torch.long),
            torch.zeros(shape[1:]) if len(shape) > 1 else torch.zeros(()), nan, _meta_tensor(shape),
            torch.zeros(shape, dtype=torch.complex64)]


def _not_finite(value) -> bool:
    tensors = value if isinstance(value, tuple | list) else (value,)
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.device.type == "meta":
            return True
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
            return True
        if isinstance(t, float) and not math.isfinite(t):
            return True
    return False


def mutate(label: str, build: Callable[..., object], base: dict, kinds: dict) -> list[Case]:
    """A case for every argument in ``kinds`` and every bad value of its kind."""
    out = []
    for name, kind in kinds.items():
        values = kind if isinstance(kind, list) else BAD[kind]
        for i, value in enumerate(values):
            def call(name=name, value=value):
                return build(**dict(base, **{name: value}))
            names = (name, Path(value).name) if isinstance(value, Path) else (name,)
            out.append(Case(f"{label}({name}={_short(value)})#{i}", names, call))
    return out


def _short(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{tuple(v.shape)}:{v.dtype}:{v.device.type}"
    if isinstance(v, np.ndarray):
        return f"ndarray{v.shape}"
    text = repr(v)
    return text if len(text) < 20 else text[:17] + "..."


# --------------------------------------------------------------------------- the API
def api_cases() -> list[Case]:  # noqa: C901 - one table
    from lessons_lib import (
        autodiff,
        densities,
        edm,
        losses,
        nets,
        noise,
        plotting,
        samplers,
        sde,
        stats,
        training,
        utils,
    )
    from lessons_lib.toy_data import mixture_1d, mixture_2d

    g = lambda: utils.make_generator(0)  # noqa: E731
    x2 = torch.randn(16, 2, generator=g())
    mix2 = mixture_2d()
    gauss = densities.Gaussian([0.0, 0.0], 1.0)
    score2 = lambda x: -x  # noqa: E731
    score2s = lambda x, s: -x / (1 + s**2)  # noqa: E731
    mlp = nets.ScoreMLP(2, hidden=8)
    mlps = nets.ScoreMLP(2, hidden=8, sigma_conditioned=True)
    cases: list[Case] = []
    add = cases.extend
    B = _bad_batches((16, 2))

    # densities
    add(mutate("Gaussian", densities.Gaussian, dict(mean=[0.0, 0.0], cov=1.0),
               dict(mean=[None, [math.nan, 0.0], "ab"], cov=[None, -1.0, math.nan, [[1.0, 2.0], [2.0, 1.0]]])))
    add(mutate("GaussianMixture", densities.GaussianMixture, dict(weights=[0.5, 0.5], means=[[0.0], [1.0]], covs=1.0),
               dict(weights=[None, [0.5, math.nan], [0.7, 0.7]], means=[None, [[0.0], [math.inf]]],
                    covs=[None, -1.0, math.nan])))
    add(mutate("Gaussian.log_prob", lambda x: gauss.log_prob(x), dict(x=x2), dict(x=B)))
    add(mutate("GaussianMixture.score", lambda x: mix2.score(x), dict(x=x2), dict(x=B)))
    add(mutate("GaussianMixture.sample", lambda n, generator: mix2.sample(n, generator=generator),
               dict(n=4, generator=None), dict(n="count0", generator=[3, "g"])))
    add(mutate("Gaussian.perturbed", lambda sigma: gauss.perturbed(sigma), dict(sigma=0.5), dict(sigma="sigma")))
    add(mutate("noisy_score", lambda x, sigma: densities.noisy_score(mix2)(x, sigma), dict(x=x2, sigma=0.5),
               dict(x=B[:4], sigma="sigma")))
    add(mutate("sample_errors", lambda x: densities.sample_errors(mix2, x), dict(x=x2), dict(x=B[:4])))
    xs = torch.linspace(-3, 3, 50)
    add(mutate("density_from_score_1d", densities.density_from_score_1d,
               dict(score_fn=lambda x: -x, xs=xs), dict(score_fn="fn", xs=[None, xs.numpy(), xs.flip(0)])))
    add(mutate("total_variation_1d", densities.total_variation_1d, dict(p=xs.exp(), q=xs.exp(), xs=xs),
               dict(p=[None, xs.numpy(), torch.full((50,), math.nan)], q=[None, xs[:3]])))

    # autodiff
    add(mutate("jacobian_trace", autodiff.jacobian_trace, dict(f=score2, x=x2), dict(f="fn", x=B[:7])))
    add(mutate("hutchinson_trace", autodiff.hutchinson_trace, dict(f=score2, x=x2, n_projections=2, kind="rademacher"),
               dict(f="fn", x=B[:4], n_projections="count", kind=["bogus", None])))
    add(mutate("sample_projections", autodiff.sample_projections, dict(shape=(3, 2), kind="rademacher"),
               dict(shape=[None, (-1, 2), "ab"], kind=["bogus", None])))
    A = torch.eye(3, dtype=torch.float64)
    add(mutate("hutchinson_variance", autodiff.hutchinson_variance, dict(A=A, kind="gaussian"),
               dict(A=[None, torch.ones(3), torch.full((3, 3), math.nan)], kind=["bogus"])))
    add(mutate("linear_hutchinson_estimates", autodiff.linear_hutchinson_estimates,
               dict(A=A, n_repeats=5, n_projections=1), dict(A=[None, torch.full((3, 3), math.inf)],
                                                             n_repeats="count", n_projections="count")))
    add(mutate("score_from_log_prob", lambda x: autodiff.score_from_log_prob(gauss.log_prob)(x), dict(x=x2),
               dict(x=B[:4])))

    # noise
    add(mutate("geometric_sigmas", noise.geometric_sigmas, dict(sigma_max=10.0, sigma_min=0.1, n=5),
               dict(sigma_max="sigma", sigma_min="sigma", n="count")))
    add(mutate("karras_sigmas", noise.karras_sigmas, dict(sigma_max=10.0, sigma_min=0.1, n=5, rho=7.0),
               dict(sigma_max=[None, math.inf], n=[None, 1, 2.5], rho="positive")))
    add(mutate("perturb", noise.perturb, dict(x=x2, sigma=0.5), dict(x=B, sigma="sigma")))
    add(mutate("validate_sigmas", noise.validate_sigmas, dict(sigmas=[1.0, 0.5]),
               dict(sigmas=[None, [0.5, 1.0], [1.0, math.nan], "ab", []])))

    # losses
    add(mutate("esm_loss", losses.esm_loss, dict(score_fn=mlp, x=x2, true_score=score2),
               dict(score_fn="fn", x=B, true_score=[None, torch.zeros(3, 2)])))
    add(mutate("ism_loss", losses.ism_loss, dict(score_fn=mlp, x=x2), dict(x=B[:6], reduction=["sum", None])))
    add(mutate("ssm_loss", losses.ssm_loss, dict(score_fn=mlp, x=x2, n_projections=1),
               dict(x=B[:6], n_projections="count", kind=["bogus"])))
    add(mutate("ssm_vr_loss", losses.ssm_vr_loss, dict(score_fn=mlp, x=x2), dict(x=B[:6], v=[torch.ones(3)])))
    add(mutate("dsm_loss", losses.dsm_loss, dict(score_fn=mlp, x=x2, sigma=0.5),
               dict(score_fn="fn", x=B, sigma="sigma", z=[torch.zeros(3, 2), torch.full((16, 2), math.nan)])))
    add(mutate("ncsn_loss", losses.ncsn_loss, dict(score_fn=mlps, x=x2, sigmas=[1.0, 0.5]),
               dict(x=B[:6], sigmas=[None, [0.5, 1.0], [1.0, -1.0]])))
    add(mutate("ncsn_loss_at", losses.ncsn_loss_at, dict(score_fn=mlps, x=x2, sigma=0.5),
               dict(x=B[:6], sigma="sigma")))
    add(mutate("edm_loss", losses.edm_loss, dict(score_fn=mlps, x=x2, sigma_data=0.5),
               dict(x=B[:6], sigma_data="positive", p_mean="real", p_std="positive")))

    # nets
    add(mutate("LinearScore", nets.LinearScore, dict(dim=2), dict(dim="count")))
    add(mutate("ScoreMLP", nets.ScoreMLP, dict(dim=2, hidden=8, n_layers=1),
               dict(dim="count", hidden=[None, 0, 2.5], n_layers=[None, -1])))
    add(mutate("ScoreMLP.forward", lambda x: mlp(x), dict(x=x2), dict(x=B)))
    add(mutate("ScoreMLP(σ).forward", lambda x, sigma: mlps(x, sigma), dict(x=x2, sigma=0.5),
               dict(x=B[:4], sigma="sigma")))
    add(mutate("EnergyMLP", nets.EnergyMLP, dict(dim=2), dict(dim=[None, 0, "2"])))

    # samplers
    add(mutate("langevin", samplers.langevin, dict(score_fn=score2, x_init=x2, step_size=0.1, n_steps=3),
               dict(score_fn="fn", x_init=B, step_size="positive", n_steps="count0", record_every="count")))
    add(mutate("annealed_langevin", samplers.annealed_langevin,
               dict(score_fn=score2s, x_init=x2, sigmas=[1.0, 0.5], n_steps_each=2, step_size=0.01),
               dict(score_fn="fn", x_init=B[:7], sigmas=[None, [0.5, 1.0], [1.0, math.nan]],
                    n_steps_each="count", step_size="positive")))
    img = torch.rand(2, 1, 4, 4, generator=g())
    add(mutate("annealed_inpainting", samplers.annealed_inpainting,
               dict(score_fn=score2s, image=img, mask=torch.ones(1, 1, 4, 4), sigmas=[1.0, 0.5], n_steps_each=2),
               dict(image=_bad_batches((2, 1, 4, 4))[:6], mask=[None, torch.full((1, 1, 4, 4), 0.5), torch.ones(3)],
                    known_noise=["bogus"])))
    vp = densities.Gaussian([0.0], 1.0)
    cases.append(Case("langevin(step_size=2.5 > 2v, unstable)", ("step_size",),
                      lambda: samplers.langevin(vp.score, torch.ones(50, 1), 2.5, 60, generator=g())))
    cases.append(Case("langevin(score_fn returns NaN)", ("score_fn",),
                      lambda: samplers.langevin(lambda x: x * math.nan, torch.ones(5, 1), 0.1, 3)))
    cases.append(Case("annealed_langevin(step_size=100, unstable)", ("step_size",),
                      lambda: samplers.annealed_langevin(densities.noisy_score(vp), torch.ones(5, 1), [1.0, 0.5],
                                                         n_steps_each=40, step_size=100.0, generator=g())))

    # sde
    S = sde.VESDE(sigma_max=5.0, sigma_min=0.01)
    add(mutate("VESDE", sde.VESDE, dict(sigma_max=5.0, sigma_min=0.01), dict(sigma_max="sigma", sigma_min="sigma")))
    add(mutate("VESDE.sigma", lambda t: S.sigma(t), dict(t=0.5), dict(t=[None, math.nan, -0.1, 1.5, "a", True])))
    add(mutate("VESDE.time_grid", lambda n_steps: S.time_grid(n_steps), dict(n_steps=4), dict(n_steps="count")))
    add(mutate("VESDE.prior_sample", lambda shape: S.prior_sample(shape), dict(shape=(2, 2)),
               dict(shape=[None, (-1, 2), "ab"])))
    xp = S.prior_sample((8, 2), generator=g())
    add(mutate("reverse_sde_sample", sde.reverse_sde_sample, dict(score_fn=score2s, sde=S, x_init=xp, n_steps=3),
               dict(score_fn="fn", sde=[None, "ve"], x_init=B[:7], n_steps="count")))
    add(mutate("pc_sample", sde.pc_sample, dict(score_fn=score2s, sde=S, x_init=xp, n_steps=3),
               dict(x_init=B[:4], n_steps="count", n_corrector="count0", snr="positive")))
    add(mutate("ode_sample", sde.ode_sample, dict(score_fn=score2s, sde=S, x_init=xp, n_steps=3),
               dict(x_init=B[:4], n_steps="count", method=["bogus", None])))
    add(mutate("ode_encode", sde.ode_encode, dict(score_fn=score2s, sde=S, x_data=x2, n_steps=3),
               dict(x_data=B[:6], times=[[0.0, 2.0], [0.5, 0.2], "ab"])))
    add(mutate("ode_log_likelihood", sde.ode_log_likelihood, dict(score_fn=mlps, sde=S, x=x2[:2], n_steps=2),
               dict(x=B[:6], divergence=["bogus"], n_projections=[None, 0])))
    add(mutate("bits_per_dim", sde.bits_per_dim, dict(log_p=torch.zeros(3), dim=784),
               dict(log_p=[None, np.zeros(3), torch.full((3,), math.nan)], dim="count", n_levels=[None, 0])))

    # edm
    ks = noise.karras_sigmas(5.0, 0.01, 4)
    add(mutate("heun_sample", edm.heun_sample, dict(score_fn=score2s, x_init=xp, sigmas=ks),
               dict(score_fn="fn", x_init=B[:7], sigmas=[None, [1.0, 0.5], [0.5, 1.0, 0.0], "ab", [1.0, math.nan, 0.0]],
                    churn=[None, -1.0, math.nan, math.inf], churn_range=[None, (50.0, 0.05), (math.nan, 1.0)])))
    cases.append(Case("heun_sample(score_fn returns NaN)", ("score_fn",),
                      lambda: edm.heun_sample(lambda x, s: x * math.nan, xp, ks)))

    # training
    def _train(**kw):
        m = nets.ScoreMLP(2, hidden=4)
        base = dict(model=m, loss_fn=lambda mm, b, gg: losses.dsm_loss(mm, b, 0.5, gg), data=x2, n_steps=2,
                    progress=False)
        base.update(kw)
        return training.train(**base)
    add(mutate("train", _train, {}, dict(n_steps="count0", batch_size="count", lr="positive", seed="seed",
                                          data=[None, np.zeros((4, 2)), torch.zeros(0, 2),
                                                torch.full((8, 2), math.nan)],
                                          ema_decay=[0.0, 1.5, math.nan, "x"],
                                          loss_fn=[None, 3], model=[None, "net"])))
    cases.append(Case("train(loss NaN, optimizer lr=0.5): quotes the lr in use", ("0.5",),
                      lambda: training.train(mlp, lambda mm, b, gg: mm(b).sum() * math.nan, x2, n_steps=1,
                                             progress=False, optimizer=torch.optim.Adam(mlp.parameters(), lr=0.5))))
    add(mutate("ema_model", training.ema_model, dict(model=mlp, decay=0.9),
               dict(decay=[None, 0.0, 1.0, math.nan, "a"])))

    # stats
    add(mutate("mean_and_se", stats.mean_and_se, dict(values=[1.0, 2.0]),
               dict(values=[None, [1.0], [1.0, math.nan], "ab", [[1.0, math.inf]]])))
    add(mutate("mean_and_sd", stats.mean_and_sd, dict(values=[1.0, 2.0]), dict(values=[None, [1.0, math.inf]])))

    # utils
    add(mutate("seed_everything", utils.seed_everything, dict(seed=0), dict(seed="seed")))
    add(mutate("make_generator", utils.make_generator, dict(seed=0), dict(seed="seed", device=["gpu9"])))
    add(mutate("get_device", utils.get_device, dict(device="cpu"), dict(device=[3, "gpu", "cuda:x"])))

    # plotting
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    add(mutate("grid_2d", plotting.grid_2d, dict(xlim=(-1, 1), ylim=(-1, 1), n=5),
               dict(xlim=[None, (1, -1), (0, math.nan)], n="count")))
    add(mutate("plot_density_1d", lambda xs, log_prob: plotting.plot_density_1d(ax, log_prob, xs),
               dict(xs=xs, log_prob=lambda x: -x[:, 0] ** 2), dict(xs=[None, xs.numpy(), xs[:, None]], log_prob="fn")))
    add(mutate("plot_samples", lambda x: plotting.plot_samples(ax, x), dict(x=x2), dict(x=B[:4] + [torch.zeros(4, 3)])))
    add(mutate("image_grid", lambda images, nrow: plotting.image_grid(ax, images, nrow=nrow),
               dict(images=img, nrow=4), dict(images=[None, img.numpy(), torch.zeros(2, 3, 4, 4)], nrow="count")))
    add(mutate("plot_score_field", lambda score_fn, n: plotting.plot_score_field(ax, score_fn, n=n),
               dict(score_fn=score2, n=4), dict(score_fn="fn", n=[None, 1, 2.5])))
    add(mutate("plot_density_2d", lambda n: plotting.plot_density_2d(ax, mix2.log_prob, n=n), dict(n=5),
               dict(n=[None, 0, 2.5])))
    del mixture_1d
    return cases


# --------------------------------------------------------------------------- MNIST
def mnist_cases(tmp: Path) -> list[Case]:
    from lessons_lib.mnist import checkpoint as ckm
    from lessons_lib.mnist import quality, sampling
    from lessons_lib.mnist.unet import NCSNUNet

    cases: list[Case] = []
    add = cases.extend
    net = NCSNUNet((8, 8, 8))
    imgs = torch.rand(4, 1, 28, 28)
    add(mutate("NCSNUNet", NCSNUNet, dict(channels=(8, 8, 8)),
               dict(channels=[None, (8, 8), (8, 0, 8), "abc"], emb_dim="count",
                    preconditioning=["bogus"], sigma_data=[-1.0])))
    add(mutate("NCSNUNet.forward", lambda x, sigma: net(x, sigma), dict(x=imgs, sigma=0.5),
               dict(x=_bad_batches((4, 1, 28, 28)), sigma="sigma")))
    ck = ckm.load_checkpoint()
    add(mutate("load_checkpoint", ckm.load_checkpoint, {},
               dict(path=[tmp / "missing.pt", 3], device=["gpu9"], precision=["float16"])))
    foreign = tmp / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    truncated = tmp / "truncated.pt"
    truncated.write_bytes(ckm.SCORE_CHECKPOINT.read_bytes()[:5000])
    no_sigmas = tmp / "no_sigmas.pt"
    payload = torch.load(ckm.SCORE_CHECKPOINT, weights_only=True)
    torch.save({k: v for k, v in payload.items() if k != "sigmas"}, no_sigmas)
    pickled = tmp / "pickled.pt"
    torch.save({"model": object}, pickled)
    for f in (foreign, truncated, no_sigmas, pickled):
        cases.append(Case(f"load_checkpoint({f.name})", (f.name,), lambda f=f: ckm.load_checkpoint(f),))
        cases.append(Case(f"load_classifier({f.name})", (f.name,), lambda f=f: quality.load_classifier(f)))

    def _save_and_load(sigmas=(1.0, 0.5), meta=None, name="ck.pt"):
        path = tmp / name
        ckm.save_checkpoint(path, net, sigmas, {} if meta is None else meta)
        return ckm.load_checkpoint(path)

    def _left_behind(name):
        def check():
            try:
                _save_and_load(meta={"f": lambda: 0}, name=name)
            finally:
                if list(tmp.glob(name + "*")):
                    raise SystemError(f"left behind {[p.name for p in tmp.glob(name + '*')]}")
        return check
    add(mutate("save_checkpoint", _save_and_load, {}, dict(sigmas=[[0.5, 1.0], [1.0, math.nan], None, "ab"],
                                                           meta=["meta", {3: "x"}, {"x": {1, 2}}])))

    def _converted(value):  # numpy scalars in meta: converted to Python numbers, read back as such
        meta = _save_and_load(meta={"x": value}, name="np.pt").meta
        if type(meta["x"]) in (int, float):
            raise ValueError("meta: converted (accepted)")
        return meta
    for value in (np.float64(1.0), np.int64(3), np.float32(0.5)):
        cases.append(Case(f"save_checkpoint(meta={{'x': {value!r}}}) converted", ("meta",),
                          lambda value=value: _converted(value)))
    cases.append(Case("save_checkpoint(meta unpicklable) leaves nothing", ("meta",), _left_behind("bad_meta.pt")))
    cases.append(Case("save_checkpoint(model=not a net)", ("model",),
                      lambda: ckm.save_checkpoint(tmp / "m.pt", "net", [1.0], {})))
    add(mutate("sample", lambda checkpoint, n, method, batch_size, **kw: sampling.sample(
        checkpoint, n, method, batch_size=batch_size, **kw),
        dict(checkpoint=ck, n=1, method="heun", batch_size=None, n_steps=2),
        dict(checkpoint=[None, str(ckm.SCORE_CHECKPOINT), ckm.SCORE_CHECKPOINT], n="count", method=["bogus", None],
             batch_size=[0, -1, "a"], n_steps=[None, 1, 2.5, "3"], sigma_max=[math.nan, -1.0], churn=[math.nan, -1.0])))
    cases.append(Case("sample(annealed, step_size 33× the default)", ("step_size",),
                      lambda: sampling.sample(ck, 2, "annealed", n_steps_each=5, step_size=1e-3)))
    add(mutate("AnnealedLangevinSampler", sampling.AnnealedLangevinSampler, {},
               dict(n_steps_each="count", step_size="positive", denoise=["yes", None])))
    add(mutate("HeunSampler", sampling.HeunSampler, {}, dict(n_steps=[None, 1, 2.5], rho="positive",
                                                              churn=[None, math.nan, -1.0])))
    clf = quality.load_classifier()
    feats = torch.randn(20, 4)
    add(mutate("frechet_distance", quality.frechet_distance, dict(feats_a=feats, feats_b=feats),
               dict(feats_a=[None, feats[:1], torch.full((20, 4), math.nan), "ab"], feats_b=[feats[:, :3]])))
    u8 = (imgs * 255).to(torch.uint8)
    add(mutate("class_histogram", quality.class_histogram, dict(images=imgs, classifier=clf),
               dict(images=[None, u8, imgs * 255, torch.zeros(4, 28, 27), torch.full((4, 1, 28, 28), math.nan)],
                    classifier=[None, "clf"], batch_size=[0, None])))
    add(mutate("sample_quality", quality.sample_quality, dict(images=imgs, reference_images=imgs, classifier=clf),
               dict(images=[u8, imgs * 255, imgs - 3], reference_images=[u8, None])))
    add(mutate("nearest_neighbours", quality.nearest_neighbours, dict(images=imgs, train=imgs),
               dict(images=[None, u8], train=[u8, torch.zeros(0, 1, 28, 28)], chunk=[0, None])))
    return cases


# --------------------------------------------------------------------------- explorers
def explorer_cases() -> list[Case]:
    from lessons_lib import explorers
    from lessons_lib.nets import ScoreMLP
    from lessons_lib.noise import geometric_sigmas
    from lessons_lib.sde import VESDE
    from lessons_lib.toy_data import mixture_1d, mixture_2d

    cases: list[Case] = []
    add = cases.extend
    m1, m2 = mixture_1d(), mixture_2d()
    model = ScoreMLP(1, hidden=4, sigma_conditioned=True)
    add(mutate("MixtureScoreExplorer", explorers.MixtureScoreExplorer, {},
               dict(weight=[1.5, -0.1, math.nan, None], std1=[0.0, -1.0, 5.0], mean1=[math.nan, 10.0], n=[0, "a"])))
    add(mutate("ProjectionVarianceExplorer", explorers.ProjectionVarianceExplorer, dict(dim=4, n_repeats=50),
               dict(dim=[0, None, 2.5], n_repeats=[1, 0, None], seed=[-1, None], bins=[0],
                    A=[torch.ones(3), torch.full((3, 3), math.nan)])))
    add(mutate("SigmaExplorer", explorers.SigmaExplorer, dict(density=m1, learned_score=model),
               dict(density=[m2, None], learned_score=[None], sigma=[10.0, 0.0, math.nan],
                    sigma_range=[(5.0, 0.02), (0.0, 1.0), None])))
    x_init = torch.rand(20, 2)
    add(mutate("LangevinExplorer", explorers.LangevinExplorer, dict(density=m2, x_init=x_init, n_steps=10),
               dict(x_init=[None, x_init.numpy(), torch.rand(20, 3), torch.full((20, 2), math.nan)],
                    step_size=[5.0, 0.0, math.nan], n_steps=[-1, 2000, 2.5, None], step_range=[(3.0, 1e-3)],
                    max_steps=[0, -5])))
    sig = geometric_sigmas(10.0, 0.01, 3)
    traj = torch.rand(4, 2, 1, 28, 28)
    add(mutate("TrajectoryExplorer", explorers.TrajectoryExplorer, dict(trajectory=traj, sigmas=sig),
               dict(trajectory=[None, traj[:, :, 0], torch.rand(9, 2, 1, 28, 28)], sigmas=[None, sig.flip(0)],
                    nrow=[0, -1, "a"])))
    S = VESDE(sigma_max=50.0, sigma_min=0.01)
    add(mutate("SDETimeExplorer", explorers.SDETimeExplorer, dict(density=m2, sde=S, n=20, n_arrows=5, n_points=10),
               dict(t=[1.5, -0.1, math.nan], sde=[None], n=[0, 1], n_arrows=[0], n_points=[0, -3])))
    return cases


# --------------------------------------------------------------------------- the CLI
CLI_CASES = [  # (flags after "sample"/"train", the flag the message must name)
    (["sample", "--threads", "-1"], "threads"),
    (["sample", "--threads", "0"], "threads"),
    (["sample", "--n", "0"], "n"),
    (["sample", "--n", "-3"], "n"),
    (["sample", "--n", "abc"], "n"),
    (["sample", "--method", "annealed", "--step-size", "-1"], "step"),
    (["sample", "--method", "annealed", "--step-size", "nan"], "step"),
    (["sample", "--method", "annealed", "--step-size", "0"], "step"),
    (["sample", "--method", "annealed", "--n-steps-each", "0"], "n-steps-each"),
    (["sample", "--n-steps", "1"], "n-steps"),
    (["sample", "--sigma-max", "inf"], "sigma-max"),
    (["sample", "--churn", "-2"], "churn"),
    (["sample", "--seed", "-1"], "seed"),
    (["sample", "--checkpoint", "{tmp}/missing.pt"], "missing.pt"),
    (["sample", "--checkpoint", "{tmp}/foreign.pt"], "foreign.pt"),
    (["sample", "--out", "{tmp}/no_such_dir/x.npy"], "out"),
    (["sample", "--out", "{tmp}/samples"], "out"),
    (["sample", "--device", "gpu9"], "device"),
    (["sample", "--method", "annealed", "--n-steps-each", "5", "--step-size", "1e-3", "--n", "2"], "step"),
    (["train", "--n-steps", "0"], "n-steps"),
    (["train", "--lr", "-1"], "lr"),
    (["train", "--lr", "nan"], "lr"),
    (["train", "--batch-size", "0"], "batch-size"),
    (["train", "--threads", "-1"], "threads"),
    (["train", "--sigma-min", "20"], "sigma"),
    (["train", "--ema-decay", "1.5"], "ema-decay"),
    (["train", "--checkpoint-every", "0"], "checkpoint-every"),
    (["train", "--channels", "8", "0", "8"], "channels"),
    (["train", "--out", "{tmp}/no_such_dir/a/ncsn.pt", "--n-steps", "0"], "out"),
    (["train", "--seed", "-5"], "seed"),
]


def cli_outcome(flags: list[str], name: str, tmp: Path) -> tuple[str, str]:
    work = Path(tempfile.mkdtemp(dir=tmp))
    flags = [f.replace("{tmp}", str(tmp)) for f in flags]
    if "--out" not in flags:
        flags += ["--out", str(work / ("out.npy" if flags[0] == "sample" else "out.pt"))]
    if flags[0] == "sample" and "--n-steps" not in flags and "--method" not in flags:
        flags += ["--n-steps", "2"]
    if flags[0] == "sample" and "--n" not in flags:
        flags += ["--n", "1"]
    if flags[0] == "train":
        flags += ["--channels", "4", "4", "4"] if "--channels" not in flags else []
        flags += ["--n-steps", "1"] if "--n-steps" not in flags else []
        flags += ["--batch-size", "2"] if "--batch-size" not in flags else []
    flags += ["--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = set(tmp.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "lessons_lib.mnist", *flags], capture_output=True, text=True,
                          cwd=work, env=env, timeout=600)
    written = [p for p in set(tmp.rglob("*")) - before if p.is_file()]
    err = proc.stderr.strip()
    err_lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    text = f"rc={proc.returncode} stderr={err[-300:]!r} written={[p.name for p in written]}"
    if "Traceback" in err or proc.returncode not in (0, 2):
        return "crash", text
    if proc.returncode == 0:
        return "silent", text
    if len(err_lines) == 1 and name in err_lines[0] and not written and "%|" not in err:
        return "clear", text
    return "unclear", text


# --------------------------------------------------------------------------- classification
def outcome(case: Case) -> tuple[str, str]:
    ours = _ours()
    try:
        value = case.call()
    except SystemError as err:  # a left-behind file
        return "crash", str(err)
    except ours as err:
        msg = str(err)
        if any(n in msg for n in case.names):
            return "clear", f"{type(err).__name__}: {msg[:160]}"
        return "unclear", f"{type(err).__name__} not naming {case.names}: {msg[:160]}"
    except Exception as err:  # noqa: BLE001 - that is what we classify
        return "unclear", f"{type(err).__name__}: {str(err)[:160]}"
    except BaseException as err:  # noqa: BLE001
        return "crash", f"{type(err).__name__}: {str(err)[:160]}"
    if _not_finite(value):
        return "silent", "returned non-finite values"
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() and \
            float(value.abs().max()) > 1e4:
        return "silent", f"returned values up to {float(value.abs().max()):.3g}"
    return "silent", f"returned {type(value).__name__}"


def run(cli: bool = True, verbose: bool = True, out=sys.stdout) -> Counter:
    import warnings

    warnings.filterwarnings("ignore")
    counts: Counter = Counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cases = api_cases() + mnist_cases(tmp) + explorer_cases()
        for case in cases:
            kind, detail = outcome(case)
            counts[kind] += 1
            rows.append((kind, case.label, detail))
        if cli:
            foreign = tmp / "foreign.pt"
            if not foreign.exists():
                torch.save({"weights": torch.zeros(3)}, foreign)
            for flags, name in CLI_CASES:
                kind, detail = cli_outcome(list(flags), name, tmp)
                counts[kind] += 1
                rows.append((kind, "CLI " + " ".join(flags), detail))
    total = sum(counts.values())
    print(f"{total} bad inputs: " + ", ".join(f"{k} {counts[k]}" for k in ("clear", "unclear", "silent", "crash")),
          file=out)
    if verbose:
        for kind, label, detail in rows:
            if kind != "clear":
                print(f"{kind:8s} {label}: {detail}", file=out)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Throw bad inputs at lessons_lib and count the outcomes.")
    p.add_argument("--no-cli", action="store_true", help="the API only")
    p.add_argument("--quiet", action="store_true", help="the counts only")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    run(cli=not args.no_cli, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", line_buffering=True)
    sys.exit(main())

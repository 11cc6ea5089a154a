"""Cost and variance of the score-matching objectives.

* Cost: time of one training step (forward + backward) of ISM (exact trace), SSM, SSM-VR and
  DSM on the same ScoreMLP, for d = 2 … 1024, as ratios to DSM at each d; the peak memory each
  step adds, measured in a fresh process (resident set size).
* Variance: the variance of the gradient of SSM, SSM-VR and ISM (exact) at a fixed cost, and
  the variance of the DSM loss as σ shrinks.
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from torch.utils import benchmark

from lessons_lib.losses import dsm_loss, ism_loss, ssm_loss, ssm_vr_loss
from lessons_lib.nets import ScoreMLP
from lessons_lib.toy_data import mixture_2d

OBJECTIVES = {
    "ISM (exact)": lambda m, x, g: ism_loss(m, x),
    "SSM": lambda m, x, g: ssm_loss(m, x, generator=g),
    "SSM-VR": lambda m, x, g: ssm_vr_loss(m, x, generator=g),
    "DSM": lambda m, x, g: dsm_loss(m, x, 0.1, generator=g),
}
DIMS = [2, 8, 32, 128, 512, 1024]
BATCH = 64


def _setup(d: int):
    torch.manual_seed(0)
    model = ScoreMLP(d, hidden=256, n_layers=2)
    x = torch.randn(BATCH, d)
    return model, x, torch.Generator().manual_seed(0)


def step_seconds(name: str, d: int, min_run_time: float = 0.5) -> float:
    """Median seconds of one forward + backward step (torch.utils.benchmark)."""
    model, x, g = _setup(d)
    loss_fn = OBJECTIVES[name]

    def step():
        model.zero_grad(set_to_none=True)
        loss_fn(model, x, g).backward()

    step()
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def peak_memory_mib(name: str, d: int) -> float:
    """Extra resident memory of 3 steps, in a fresh Python process (MiB).

    Reads the process's own high-water mark VmHWM (Linux); ``getrusage``'s ru_maxrss would not
    do: Linux carries it over from the parent across fork and exec, so a child of a large
    process sees no growth at all.
    """
    code = (
        "import json, re\n"
        "from benchmarks.objectives import _setup, OBJECTIVES\n"
        "def hwm():\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        f"model, x, g = _setup({d})\n"
        "before = hwm()\n"
        "for _ in range(3):\n"
        f"    model.zero_grad(); OBJECTIVES[{name!r}](model, x, g).backward()\n"
        "print(json.dumps((hwm() - before) / 1024))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cost_table(dims=DIMS) -> str:
    rows = ["| d | DSM step (ms) | ISM (exact) / DSM | SSM / DSM | SSM-VR / DSM "
            "| peak extra memory ISM / SSM / DSM (MiB) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in dims:
        t = {name: step_seconds(name, d) for name in OBJECTIVES}
        mem = {name: peak_memory_mib(name, d) for name in ("ISM (exact)", "SSM", "DSM")}
        rows.append(
            f"| {d} | {t['DSM'] * 1e3:.2f} | {t['ISM (exact)'] / t['DSM']:.1f} | {t['SSM'] / t['DSM']:.1f} | "
            f"{t['SSM-VR'] / t['DSM']:.1f} | {mem['ISM (exact)']:.0f} / {mem['SSM']:.0f} / {mem['DSM']:.0f} |"
        )
    return "\n".join(rows)


def _grad_vector(model, loss) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def gradient_variance_table(d: int = 16, batch: int = 32, n_draws: int = 200) -> str:
    """Total variance of the minibatch gradient (summed over parameters) for each objective,
    and the same at a fixed cost: variance × (step time / ISM step time), i.e. the variance
    left after spending ISM's compute on averaging independent steps."""
    torch.manual_seed(0)
    model = ScoreMLP(d, hidden=64).double()
    data = torch.randn(20_000, d, dtype=torch.float64) * 1.5
    g = torch.Generator().manual_seed(1)
    objectives = [
        ("ISM (exact)", lambda m, x: ism_loss(m, x)),
        ("SSM (Rademacher)", lambda m, x: ssm_loss(m, x, generator=g)),
        ("SSM (Gaussian)", lambda m, x: ssm_loss(m, x, kind="gaussian", generator=g)),
        ("SSM-VR (Rademacher)", lambda m, x: ssm_vr_loss(m, x, generator=g)),
    ]
    variance, seconds = {}, {}
    for name, fn in objectives:
        grads = []
        for _ in range(n_draws):
            idx = torch.randint(0, len(data), (batch,), generator=g)
            grads.append(_grad_vector(model, fn(model, data[idx])))
        variance[name] = torch.stack(grads).var(0).sum().item()
        x = data[:batch]
        timer = benchmark.Timer(stmt="grad(model, fn(model, x))",
                                globals={"grad": _grad_vector, "model": model, "fn": fn, "x": x})
        seconds[name] = timer.blocked_autorange(min_run_time=0.3).median
    ref = "ISM (exact)"
    rows = [f"| objective (d = {d}, batch {batch}, 1 projection) | gradient variance | step time / ISM "
            "| variance at ISM's cost, relative to ISM |",
            "| --- | ---: | ---: | ---: |"]
    for name, _ in objectives:
        rel_cost = seconds[name] / seconds[ref]
        rows.append(f"| {name} | {variance[name]:.3g} | {rel_cost:.2f} | "
                    f"{variance[name] * rel_cost / variance[ref]:.2f} |")
    return "\n".join(rows)


def dsm_variance_table(sigmas=(1.0, 0.3, 0.1, 0.03, 0.01)) -> str:
    """Variance of the per-sample DSM loss at the true score of p_σ (2-D mixture)."""
    mix = mixture_2d()
    x = mix.sample(20_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rows = ["| σ | per-sample DSM variance at the true score | × σ⁴ (≈ constant: variance ∝ 1/σ⁴) |",
            "| ---: | ---: | ---: |"]
    for s in sigmas:
        noisy = mix.perturbed(s)
        v = dsm_loss(noisy.score, x, s, generator=torch.Generator().manual_seed(1), reduction="none").var().item()
        rows.append(f"| {s:g} | {v:.3g} | {v * s**4:.3g} |")
    return "\n".join(rows)


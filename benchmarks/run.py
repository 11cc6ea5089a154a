"""Run every benchmark and write benchmarks/RESULTS.md (included in the README).

    python -m benchmarks.run                 # everything (about half an hour on 2 cores, plus MNIST quality: an hour without a GPU)
    python -m benchmarks.run --only objectives samplers
    python -m benchmarks.run --repeats 1     # one run per notebook for the course runtime

Benchmarks are not tests: nothing in the test suite asserts a wall-clock time. Figures are
medians (torch.utils.benchmark) or medians of repeated runs, quoted with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
README = ROOT / "README.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}, GPU: {gpu}")


def _lazy(module: str, function: str, *args, **kwargs):
    """Import a benchmark module only when its section runs (a GPU machine may lack Jupyter)."""
    def run():
        import importlib

        return getattr(importlib.import_module(f"benchmarks.{module}"), function)(*args, **kwargs)
    return run


def sections(repeats: int):
    yield "objectives", "Cost of the objectives vs dimension", (
        "One training step (forward + backward) of a ScoreMLP (2 hidden layers of 256), batch 64; "
        "median time of DSM and the other objectives as multiples of it; extra resident memory of "
        "the step in a fresh process.", _lazy("objectives", "cost_table"))
    yield "variance", "Estimator variance", (
        "Gradient variance at equal batch size, and at equal cost (variance × relative step time). "
        "Then the variance of the DSM loss at the true score as σ shrinks.",
        lambda: _lazy("objectives", "gradient_variance_table")() + "\n\n" + _lazy("objectives", "dsm_variance_table")())
    yield "samplers", "Sampler quality on known targets", (
        "4,000 chains from a uniform box around the data; mode weights by the most responsible "
        "component; the same score-evaluation budget for both samplers.", _lazy("samplers", "quality_table"))
    yield "sde", "Score-SDE samplers on known targets", (
        "Lesson 07: the reverse SDE, predictor–corrector, the probability-flow ODE and annealed Langevin "
        "with the exact scores of the perturbed mixtures, at equal numbers of score evaluations "
        "(`benchmarks/sde.py`). Mode weights by the most responsible component.", _lazy("sde", "quality_table"))
    yield "widgets", "Slider latency", (
        "Headless: setting a slider's value in the kernel, five values each: the explorer's recomputation, "
        "redraw and PNG (`benchmarks/widgets.py`). Felt: the same explorers in JupyterLab in headless Chromium, "
        "each arrow-key press timed from keydown until the new figure is decoded and painted "
        "(`benchmarks/felt_latency.py`)."
        " Before 2026-11-29 each update re-displayed the figure through the inline backend in an Output widget (a second layout pass, default PNG compression, base64 in JSON, the output area rebuilt); measured the same way on the same machine, felt median (max) in ms: MixtureScoreExplorer 142 (170), ProjectionVarianceExplorer 278 (294), SigmaExplorer 227 (374), LangevinExplorer 221 (262), SDETimeExplorer 192 (240), SigmaLevelExplorer 220 (248); headless medians then 83, 210, 163, 141, 141 and 150."
        " Above 150 ms: LangevinExplorer's update runs 500 chains × 200 Langevin steps (about 43 ms of kernel time, competing with the browser for the 2 cores), and ProjectionVarianceExplorer redraws both axes in full, since their limits and ticks change with each setting; both sliders update on release, not while dragged.", _lazy("ux.felt_latency", "latency_table"))
    where = " (a GPU machine)" if torch.cuda.is_available() else " (CPU only)"
    yield "mnist", "MNIST: training and sampling speed" + where, (
        "The noise-conditional U-Net of lesson 06 (EDM's preconditioning) at the shipped checkpoint's widths, "
        "its arithmetic in float32 and in bfloat16 (`torch.autocast`; weights, optimiser and loss stay "
        "float32): one training step of batch 128 (median), one network evaluation on 100 images (median), "
        "and their product with the number of evaluations a sampler needs.", _lazy("mnist.speed", "speed_table"))
    yield "mnist_quality", "MNIST: sample quality at equal network evaluations", (
        "The shipped checkpoint with every sampler of lessons 06 and 07, scored by "
        "`benchmarks/mnist_quality.py` (Fréchet distance in the feature space of the classifier of "
        "`benchmarks/mnist_classifier.py`, and the class fractions of the samples); the distances of "
        "samples to their nearest training digit; the time for 100 digits. On 2 CPU cores this section "
        "takes about 23 minutes (1,357 s on 2026-11-30).", _lazy("mnist.quality", "report"))
    yield "sde_mnist", "MNIST: the ODE likelihood", (
        "Lesson 07's exact likelihood with the shipped checkpoint: the time of one evaluation on a batch "
        "of held-out digits (`benchmarks/sde.py --mnist`).", _lazy("sde", "mnist_table"))
    yield "course", "Course runtime", (
        "Each notebook executed top to bottom on a fresh kernel (nbclient).",
        _lazy("course", "runtime_table", repeats))


def _previous_sections() -> dict[str, str]:
    """The sections of the existing RESULTS.md by title, so that ``--only`` keeps the others."""
    if not RESULTS.is_file():
        return {}
    chunks = re.split(r"^## ", RESULTS.read_text(), flags=re.M)[1:]
    return {chunk.split("\n", 1)[0].strip(): "## " + chunk.rstrip() + "\n" for chunk in chunks}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="section keys to run (default: all); the others are kept")
    parser.add_argument("--repeats", type=int, default=3, help="runs per notebook for the course runtime")
    args = parser.parse_args(argv)
    previous = _previous_sections()
    parts = ["# Benchmark results\n\nEach section names the machine it was measured on. "
             "Regenerate with `make benchmarks` (or `python -m benchmarks.run --only KEY ...`).\n"]
    for key, title, (intro, table) in sections(args.repeats):
        # the same measurement from another kind of machine, e.g. "... (CPU only)" beside "... (a GPU machine)"
        siblings = [text for t, text in previous.items() if t != title and t.split(" (")[0] == title.split(" (")[0]]
        if args.only and key not in args.only:
            parts += [previous[title]] if title in previous else []
            parts += siblings
            continue
        start = time.perf_counter()
        print(f"[{key}] ...", flush=True)
        body = table()
        print(body, f"\n[{key}] {time.perf_counter() - start:.0f} s", flush=True)
        parts.append(f"## {title}\n\n{intro}\n\n{body}\n\n*{machine()}, {time.strftime('%Y-%m-%d')}.*\n")
        parts += siblings
    RESULTS.write_text("\n".join(parts))
    include_in_readme(RESULTS.read_text())


def include_in_readme(results: str) -> None:
    """Replace the README's block between the benchmark markers with the results."""
    text = README.read_text()
    start, end = "<!-- BENCHMARKS:START -->", "<!-- BENCHMARKS:END -->"
    if start not in text:
        return
    body = re.sub(r"^# Benchmark results\n", "", results).replace("\n## ", "\n#### ")
    README.write_text(re.sub(f"{re.escape(start)}.*{re.escape(end)}", lambda m: f"{start}\n{body}\n{end}", text, flags=re.S))


if __name__ == "__main__":
    main()

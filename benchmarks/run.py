"""Run every benchmark and write benchmarks/RESULTS.md (included in the README).

    python -m benchmarks.run                 # everything (MNIST quality is the long section without a GPU)
    python -m benchmarks.run --only objectives samplers
    python -m benchmarks.run --repeats 1     # one run per notebook for the course runtime

Benchmarks are not tests: nothing in the test suite asserts a wall-clock time. Figures are
medians (torch.utils.benchmark) or medians of repeated runs, quoted with the machine. A
section's title is in ``sections`` below, the paragraph under it in ``benchmarks/intros/<key>.md``,
and its table is what the benchmark returns; a section measured again replaces the old one.
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
INTROS = ROOT / "benchmarks" / "intros"
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
    """Import ``benchmarks.<module>`` (a dotted path: ``"ux.felt_latency"``) only when its section
    runs (a GPU machine may lack Jupyter), and call its ``function``."""
    def run():
        import importlib

        return getattr(importlib.import_module(f"benchmarks.{module}"), function)(*args, **kwargs)
    run.module = f"benchmarks.{module}"
    return run


def intro(key: str) -> str:
    """The paragraph under a section's title: ``benchmarks/intros/<key>.md``."""
    return (INTROS / f"{key}.md").read_text(encoding="utf-8").strip()


def sections(repeats: int):
    """(key, title, table) of each section, in the order of RESULTS.md; ``table()`` measures."""
    yield "objectives", "Cost of the objectives vs dimension", _lazy("objectives", "cost_table")
    yield "variance", "Estimator variance", (
        lambda: _lazy("objectives", "gradient_variance_table")() + "\n\n" + _lazy("objectives", "dsm_variance_table")())
    yield "samplers", "Sampler quality on known targets", _lazy("samplers", "quality_table")
    yield "sde", "Score-SDE samplers on known targets", _lazy("sde", "quality_table")
    yield "widgets", "Slider latency", _lazy("ux.felt_latency", "latency_table")
    yield "mnist", "MNIST: training and sampling speed", _lazy("mnist.speed", "speed_table")
    yield "mnist_quality", "MNIST: sample quality at equal network evaluations", _lazy("mnist.quality", "report")
    yield "sde_mnist", "MNIST: the ODE likelihood", _lazy("sde", "mnist_table")
    yield "course", "Course runtime", _lazy("course", "runtime_table", repeats)
    yield "autograde", "Autograding time", _lazy("course", "autograde_table")


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
    for key, title, table in sections(args.repeats):
        if args.only and key not in args.only:
            parts += [previous[title]] if title in previous else []
            continue
        start = time.perf_counter()
        print(f"[{key}] ...", flush=True)
        body = table()
        print(body, f"\n[{key}] {time.perf_counter() - start:.0f} s", flush=True)
        parts.append(f"## {title}\n\n{intro(key)}\n\n{body}\n\n*{machine()}, {time.strftime('%Y-%m-%d')}.*\n")
    RESULTS.write_text("\n".join(parts))
    include_in_readme(RESULTS.read_text())


def include_in_readme(results: str) -> None:
    """Replace the README's block between the benchmark markers with the results."""
    text = README.read_text()
    start, end = "<!-- BENCHMARKS:START -->", "<!-- BENCHMARKS:END -->"
    if start not in text:
        return
    body = re.sub(r"^# Benchmark results\n", "", results).replace("\n## ", "\n#### ")
    block = re.compile(f"{re.escape(start)}.*{re.escape(end)}", flags=re.S)
    README.write_text(block.sub(lambda m: f"{start}\n{body}\n{end}", text))


if __name__ == "__main__":
    main()

"""Course runtime: wall time of each notebook executed top to bottom on a fresh kernel."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import jupytext

from tools.build_notebooks import execute

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_seconds(path: Path) -> float:
    nb = jupytext.read(path)
    start = time.perf_counter()
    execute(nb, path.parent)
    return time.perf_counter() - start


def runtime_table(repeats: int = 3) -> str:
    runs = f"{repeats} run{'s' if repeats != 1 else ''}"
    rows = [f"| notebook | median wall time (s), {runs} | min – max (s) |", "| --- | ---: | ---: |"]
    total = 0.0
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        times = [notebook_seconds(path) for _ in range(repeats)]
        med = statistics.median(times)
        total += med
        rows.append(f"| `{path.stem}` | {med:.0f} | {min(times):.0f} – {max(times):.0f} |")
    rows.append(f"| **whole course** | **{total:.0f}** | |")
    return "\n".join(rows)


# --------------------------------------------------------------------------- autograding
def autograde_seconds(problem_set: str, workdir: Path | None = None) -> float:
    """Wall time of ``nbgrader autograde`` on one correct submission of ``problem_set``: the
    course built by ``make homework`` in a temporary folder, the release generated, the source
    notebooks (every solution in place) submitted by hand, then autograded on fresh kernels."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from lessons_lib.course.homework import make_course, stamp_submissions

    def nbgrader(course: Path, *args: str) -> None:
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        course = Path(tmp) / "course"
        make_course(NOTEBOOKS, course, sets=[problem_set], course_id="benchmark")
        nbgrader(course, "generate_assignment", problem_set, "--force")
        submitted = course / "submitted" / "student" / problem_set
        shutil.copytree(course / "release" / problem_set, submitted)
        source = course / "source" / problem_set
        for path in submitted.glob("*.ipynb"):  # the solutions into the released cells
            mine = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in json.loads(
                (source / path.name).read_text())["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
            nb = json.loads(path.read_text())
            for cell in nb["cells"]:
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if grade_id in mine and not grade_id.startswith("answer_"):
                    cell["source"] = mine[grade_id]
            path.write_text(json.dumps(nb))
        stamp_submissions(course, problem_set)
        start = time.perf_counter()
        nbgrader(course, "autograde", problem_set, "--force")
        return time.perf_counter() - start


def autograde_table(sets: tuple[str, ...] | None = None) -> str:
    """Seconds to autograde one correct submission of each problem set (goal: ≤ 300 s on 2 cores)."""
    from lessons_lib.course.problem_sets import PROBLEM_SETS

    rows = ["| problem set | lessons | autograde, one submission (s) |", "| --- | --- | ---: |"]
    for name in sets or tuple(PROBLEM_SETS):
        seconds = autograde_seconds(name)
        rows.append(f"| `{name}` | {', '.join(PROBLEM_SETS[name][1])} | {seconds:.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="python -m benchmarks.course --autograde [ps1 ...]")
    parser.add_argument("--autograde", nargs="*", metavar="SET", help="problem sets to autograde (default: all)")
    args = parser.parse_args()
    if args.autograde is not None:
        print(autograde_table(tuple(args.autograde) or None))
    else:
        print(runtime_table(1))

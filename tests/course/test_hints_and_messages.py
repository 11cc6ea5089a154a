"""What a student is told must not give the answer away: no hint holds a line of its exercise's
solution or most of its tokens, and no check message states the fix as code."""

from __future__ import annotations

import keyword
import re
from collections import Counter
from pathlib import Path

import jupytext
import pytest

from lessons_lib.course import checks
from lessons_lib.course.checks import common, engine
from lessons_lib.course.markers import BEGIN_CODE, cell_source, code_solutions

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))

_HINT_LINE = re.compile(r"^\s*#\s*Hint:\s*(.*)$", re.IGNORECASE)
_HINT_BLOCK = re.compile(r"<details>\s*<summary>\s*Hint\s*</summary>(.*?)</details>", re.DOTALL | re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?")


def normalise(line: str) -> str:
    """A line with all whitespace removed (so spacing and indentation do not hide a copy)."""
    return re.sub(r"\s+", "", line)


def words(text: str) -> Counter:
    """The code words of ``text``: identifiers and numbers, Python keywords left out."""
    return Counter(w for w in _WORD.findall(text) if not keyword.iskeyword(w))


def leak(hint: str, solution: list[str]) -> str | None:
    """Why ``hint`` gives the solution away (a solution line in it, or most of the solution's
    words), else None. Solution lines of fewer than four code words (``s = score_fn(x)``) are too short to count."""
    flat = normalise(hint)
    for line in solution:
        code = line.split("#", 1)[0].strip()
        if sum(words(code).values()) >= 4 and normalise(code) in flat:
            return f"it contains the solution line {code!r}"
    mine = words("\n".join(line.split("#", 1)[0] for line in solution))
    total = sum(mine.values())
    shared = sum((mine & words(hint)).values())
    if total >= 2 and shared > total / 2:
        return f"it holds {shared} of the solution's {total} code words"
    return None


def exercises_with_hints(path: Path) -> list[tuple[str, list[str], list[str]]]:
    """(where, hint lines, solution lines) for each code exercise of a lesson: the ``# Hint:``
    lines of its cell and the lines of the markdown hint blocks since the previous exercise."""
    nb = jupytext.read(path)
    found, pending = [], []
    for index, cell in enumerate(nb.cells, start=1):
        source = cell_source(cell)
        if cell.cell_type == "markdown":
            for block in _HINT_BLOCK.findall(source):
                pending += [line for line in block.split("\n") if line.strip()]
        elif cell.cell_type == "code" and BEGIN_CODE in source:
            hints = [m.group(1) for line in source.split("\n") if (m := _HINT_LINE.match(line))]
            solution = [line for region in code_solutions({"cells": [cell]}, path.name) for line in region]
            found.append((f"{path.name}, cell {index}", hints + pending, solution))
            pending = []
    return found


def test_the_leak_test_catches_a_copied_line_and_most_of_the_tokens():
    solution = ["    diff = x - mean", "    return -torch.linalg.solve(cov, diff.T).T"]
    assert leak("torch.linalg.solve(cov, b) solves cov @ y = b.", solution) is None
    assert "solution line" in leak("finish with   return -torch.linalg.solve( cov,diff.T ).T", solution)
    assert leak("start from diff = x - mean", solution) is None  # a line of three words is too short to count
    assert "code words" in leak("solve with cov, diff, x, mean and torch.linalg, then .T", solution)
    assert leak("the score points towards the mean", solution) is None


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_no_hint_gives_the_solution_away(path):
    problems = []
    for where, hints, solution in exercises_with_hints(path):
        for hint in hints:
            why = leak(hint, solution)
            if why:
                problems.append(f"{where}: hint {hint.strip()!r}: {why}")
    assert not problems, "\n".join(problems)


# A fix stated as code: a call with a dot (.sum(), torch.linalg.inv(...)), a keyword argument
# (create_graph=True, dim=-1), a power (s**2), a transpose (.T).
CODE = re.compile(r"\.\w+\(|\b\w+=[\w\-]|\*\*|\.T\b")


def messages() -> list[tuple[str, str]]:
    found = []
    for ex in checks.exercises():
        found += [(f"{ex.name}: mistake", m.message) for m in ex.mistakes]
        found += [(f"{ex.name}: {kind}", text) for kind, text in
                  (("grad_hint", ex.grad_hint), ("reduce_hint", ex.reduce_hint), ("random_hint", ex.random_hint))
                  if text]
    found += [("engine", engine.BACKWARD_TWICE), ("engine", engine.SOLVE_SHAPES), ("engine", engine.SOLVE_SQUARE),
              ("common", common.DIFFERENTIATE_HINT), ("common", common.GIVEN_NOISE_HINT)]
    return found


def test_no_check_message_states_the_fix_as_code():
    offenders = [f"{where}: {text!r}" for where, text in messages() if CODE.search(text)]
    assert not offenders, "messages that state the fix as code:\n" + "\n".join(offenders)


def test_the_two_raw_pytorch_errors_are_named():
    backward = ("Trying to backward through the graph a second time (or directly access saved tensors after they "
                "have already been freed). Specify retain_graph=True if you need to backward through the graph")
    diagnosis, said = engine.pytorch_diagnosis(backward)
    assert "create_graph" in diagnosis and "retain_graph=True" not in said
    diagnosis, _ = engine.pytorch_diagnosis(
        "linalg.solve: Incompatible shapes of A and B for the equation AX = B (2x2 and 5x2)")
    assert "one point per row" in diagnosis
    assert engine.pytorch_diagnosis("some other error") is None

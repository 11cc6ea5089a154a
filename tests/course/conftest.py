"""Shared by the course tooling's tests: a small instructor notebook with one of everything."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

EXERCISE = '''def gaussian_score(x, mean, cov):
    """Score of N(mean, cov)."""
    # Hint: torch.linalg.solve(cov, b) solves cov @ y = b.
    ### BEGIN SOLUTION
    diff = x - mean
    return -torch.linalg.solve(cov, diff.T).T
    ### END SOLUTION'''


def _text_output(text):
    return new_output("stream", name="stdout", text=text)


@pytest.fixture
def synthetic():
    """Setup, a figure, an exercise, its check, a later cell, a Think question, an answer-only cell."""
    setup = new_code_cell(
        "import torch\nfrom lessons_lib.course.checks import check_gaussian_score", execution_count=1
    )
    plot = new_code_cell("print('a figure would be here')", execution_count=2, outputs=[_text_output("figure\n")])
    exercise = new_code_cell(EXERCISE, execution_count=3, outputs=[_text_output("defined\n")])
    check = new_code_cell(
        "check_gaussian_score(gaussian_score)",
        execution_count=4,
        outputs=[_text_output("✓ gaussian_score matches the reference on 4 test cases\n")],
    )
    after = new_code_cell("print(1 + 1)", execution_count=5, outputs=[_text_output("2\n")])
    question = new_markdown_cell(
        "## Think\n1. Why does Z drop out?\n<!-- BEGIN SOLUTION -->\nBecause the gradient of a constant "
        "is zero.\n<!-- END SOLUTION -->\n2. Next question."
    )
    answer_only = new_markdown_cell("<!-- BEGIN SOLUTION -->\nA whole answer cell.\n<!-- END SOLUTION -->")
    return json.loads(nbformat.writes(new_notebook(cells=[setup, plot, exercise, check, after, question, answer_only])))


WRITTEN_CELL = """<!-- BEGIN WRITTEN ANSWER toy_essay -->
**Model answer.** The normaliser $Z$ does not depend on $x$, so its gradient vanishes.

<!-- RUBRIC -->
- 1 point: says that Z is constant in x
- 2 points: differentiates log p and shows the log Z term vanishes
<!-- END WRITTEN ANSWER -->"""


@pytest.fixture
def written_notebook():
    """A small instructor notebook with a written question and its answer cell (a test-only
    ``Written``, toy_essay, 3 points, registered for the test); returns (notebook, answer)."""
    from lessons_lib.course import checks, markers
    from lessons_lib.course.checks import Written, register

    register(Written(name="toy_essay", lesson="01_score_function", summary="why Z drops out", points=3))
    nb = new_notebook(cells=[
        new_markdown_cell("# A lesson"),
        new_markdown_cell("### Exercise 9 (written, 3 points): why Z drops out\nExplain why."),
        new_markdown_cell(WRITTEN_CELL),
        new_code_cell("print(1)", outputs=[_text_output("1\n")]),
    ])
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb = json.loads(nbformat.writes(nb))
    try:
        yield nb, markers.written_answer(WRITTEN_CELL, "conftest")
    finally:
        del checks.REGISTRY["toy_essay"]

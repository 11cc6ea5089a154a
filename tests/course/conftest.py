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

"""The student edition: solutions become stubs, nothing else changes, malformed markers fail
clearly, no solution text leaks, and the edition runs top to bottom with every exercise
reported as "not attempted yet"."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from lessons_lib.course import markers, student_edition
from lessons_lib.course.homework import nbgrader_source
from lessons_lib.course.markers import BEGIN_CODE, END_CODE, STUB, MarkerError, cell_source, is_check_cell
from lessons_lib.course.problem_sets import INTRO_MARK
from lessons_lib.course.student_edition import generate, student_notebook
from tools.build_notebooks import execute

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
REAL_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))

NESTED_INDENT = '''class Model:
    def forward(self, x):
        if x is not None:
            ### BEGIN SOLUTION
            secret_value = 42
            return secret_value * x
            ### END SOLUTION
        return x'''


def _text_output(text):
    return new_output("stream", name="stdout", text=text)


def _notebook(*cells):
    return json.loads(nbformat.writes(new_notebook(cells=list(cells))))


def _sources(nb):
    return [cell_source(c) for c in nb["cells"]]


def test_solution_region_becomes_an_indented_stub_and_hints_stay(synthetic):
    student, n = student_notebook(synthetic, "synthetic.ipynb")
    assert n == 3  # one code region, two markdown regions
    exercise = _sources(student)[2]
    assert exercise == (
        'def gaussian_score(x, mean, cov):\n    """Score of N(mean, cov)."""\n'
        "    # Hint: torch.linalg.solve(cov, b) solves cov @ y = b.\n"
        f"    # YOUR CODE HERE\n    {STUB}"
    )


def test_deep_indentation_and_several_regions_in_one_cell():
    source = NESTED_INDENT + f"\n\n\ndef other():\n    {BEGIN_CODE}\n    return 'another secret'\n    {END_CODE}"
    student, n = student_notebook(_notebook(new_code_cell(source)), "nested.ipynb")
    assert n == 2
    lines = _sources(student)[0].split("\n")
    assert lines[3:5] == ["            # YOUR CODE HERE", f"            {STUB}"]
    assert lines[5] == "        return x"
    assert lines[-2:] == ["    # YOUR CODE HERE", f"    {STUB}"]
    compile(_sources(student)[0], "nested", "exec")


def test_outputs_of_solution_and_check_cells_are_cleared_and_the_rest_kept(synthetic):
    instructor = synthetic
    student, _ = student_notebook(instructor, "synthetic.ipynb")
    cells = student["cells"]
    assert cells[2]["outputs"] == [] and cells[2]["execution_count"] is None  # the solution cell
    assert cells[3]["outputs"] == [] and cells[3]["execution_count"] is None  # its check cell
    for i in (0, 1, 4):  # everything else unchanged
        assert cells[i] == instructor["cells"][i]
    assert instructor["cells"][3]["outputs"], "the instructor notebook must not be modified"


def test_markdown_solutions_are_removed_and_empty_cells_dropped(synthetic):
    student, _ = student_notebook(synthetic, "synthetic.ipynb")
    sources = _sources(student)
    assert len(sources) == 6  # the answer-only markdown cell is gone
    assert sources[5] == "## Think\n1. Why does Z drop out?\n2. Next question."


THINK = (
    "## Think\n1. Why does Z drop out?\n\n<details><summary>Model answer</summary>\n\nBecause the "
    "gradient of a constant is zero.\n\n</details>\n\n2. Where do the arrows point?\n\n"
    "<details><summary>Hint</summary>\n\nLook at the sign.\n\n</details>"
)


def test_model_answers_are_dropped_and_hints_kept():
    answer_cell = new_markdown_cell("<details><summary>Model answer</summary>\n\nA whole cell.\n\n</details>")
    instructor = _notebook(new_markdown_cell(THINK), answer_cell, new_markdown_cell("## Summary"))
    student, n = student_notebook(instructor, "think.ipynb")
    assert n == 0  # model answers are not exercises
    assert _sources(student) == [
        "## Think\n1. Why does Z drop out?\n\n2. Where do the arrows point?\n\n"
        "<details><summary>Hint</summary>\n\nLook at the sign.\n\n</details>",
        "## Summary",
    ]
    assert "Because the gradient" in _sources(instructor)[0]  # the instructor edition keeps them
    source, _ = nbgrader_source(instructor, "think.ipynb")
    assert _sources(source) == _sources(student)  # nbgrader would release them: gone too


@pytest.mark.parametrize(
    "text, message",
    [
        ("<details><summary>Model answer</summary>\nno end", "has no '</details>'"),
        ("<details><summary>Model Answer</summary> text on the line\n</details>", "looks like a marker but is not one"),
        ("<details><summary>Model answer</summary>\n<details><summary>Model answer</summary>\n</details>", "inside"),
    ],
)
def test_malformed_model_answers_fail(text, message):
    with pytest.raises(MarkerError, match=message):
        student_notebook(_notebook(new_markdown_cell(text)), "bad.ipynb")


@pytest.mark.parametrize(
    "source, message",
    [
        (f"def f():\n    {BEGIN_CODE}\n    return 1", "has no '### END SOLUTION' after it"),
        (f"def f():\n    return 1\n    {END_CODE}", "without a '### BEGIN SOLUTION' before it"),
        (f"{BEGIN_CODE}\n{BEGIN_CODE}\nx = 1\n{END_CODE}\n{END_CODE}", "cannot be nested"),
        ("## BEGIN SOLUTION\nx = 1\n## END SOLUTION", "looks like a marker but is not one"),
        (f"{BEGIN_CODE}  # start\nx = 1\n{END_CODE}", "looks like a marker but is not one"),
    ],
    ids=["begin-without-end", "end-without-begin", "nested", "misspelt", "text-on-marker-line"],
)
def test_malformed_code_markers_name_the_notebook_and_cell(source, message):
    nb = _notebook(new_markdown_cell("# Title"), new_code_cell("import torch"), new_code_cell(source))
    with pytest.raises(MarkerError, match="broken.ipynb, cell 3 \\(code cell") as info:
        student_notebook(nb, "broken.ipynb")
    assert message in str(info.value)


def test_malformed_markdown_markers_fail():
    nb = _notebook(new_markdown_cell("Answer:\n<!-- BEGIN SOLUTION -->\nthe answer"))
    with pytest.raises(MarkerError, match=r"broken.ipynb, cell 1 \(markdown cell.*no '<!-- END SOLUTION -->'"):
        student_notebook(nb, "broken.ipynb")


def _solution_only_lines(nb):
    """Lines that occur inside a solution region and nowhere outside one."""
    inside, outside = set(), set()
    for cell in nb["cells"]:
        begin, end = (BEGIN_CODE, END_CODE) if cell["cell_type"] == "code" else (
            markers.BEGIN_MARKDOWN,
            markers.END_MARKDOWN,
        )
        in_region = False
        for line in cell_source(cell).split("\n"):
            text = line.strip()
            if text == begin:
                in_region = True
            elif text == end:
                in_region = False
            elif text:
                (inside if in_region else outside).add(text)
    return inside - outside


def _assert_no_solution_text(instructor, student):
    secret = _solution_only_lines(instructor)
    student_text = "\n".join(_sources(student))
    student_lines = {line.strip() for line in student_text.split("\n")}
    leaked = [line for line in secret if line in student_lines]  # whole lines: hints may quote code
    assert not leaked, f"solution text in the student edition: {leaked}"
    assert BEGIN_CODE not in student_text and END_CODE not in student_text


def test_no_solution_text_in_the_synthetic_student_edition(synthetic):
    instructor = synthetic
    assert "return -torch.linalg.solve(cov, diff.T).T" in _solution_only_lines(instructor)
    _assert_no_solution_text(instructor, student_notebook(instructor, "synthetic.ipynb")[0])


def test_generate_writes_a_folder_of_its_own(synthetic, tmp_path, capsys):
    src, dst = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir()
    (src / "01_demo.ipynb").write_text(json.dumps(synthetic))
    (src / "01_demo.py").write_text("# the jupytext source, with solutions\n")
    (src / "data.csv").write_text("1,2\n")
    (src / "images").mkdir()
    (src / "images" / "figure.png").write_bytes(b"png")
    dst.mkdir()
    (dst / "stale.ipynb").write_text("{}")
    written = generate(src, dst)
    assert written == [dst / "01_demo.ipynb"]
    assert sorted(p.name for p in dst.iterdir()) == ["01_demo.ipynb", "data.csv", "images"]
    assert (dst / "images" / "figure.png").read_bytes() == b"png"
    nbformat.validate(nbformat.read(dst / "01_demo.ipynb", as_version=4))
    assert "01_demo.ipynb: 3 solution region(s) replaced" in capsys.readouterr().out
    assert "jupytext" not in json.loads((dst / "01_demo.ipynb").read_text())["metadata"]
    with pytest.raises(ValueError, match="folder of its own"):
        generate(src, src)


def test_generate_writes_nothing_when_a_notebook_is_malformed(synthetic, tmp_path):
    src, dst = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir()
    (src / "01_good.ipynb").write_text(json.dumps(synthetic))
    (src / "02_bad.ipynb").write_text(json.dumps(_notebook(new_code_cell(BEGIN_CODE + "\nx = 1"))))
    with pytest.raises(SystemExit, match=r"error: 02_bad.ipynb, cell 1"):
        student_edition.main([str(src), str(dst)])
    assert not dst.exists()


def test_command_line_usage_points_to_the_homework_command():
    with pytest.raises(SystemExit, match="lessons_lib.course.homework"):
        student_edition.main(["--nbgrader", "notebooks", "course"])


def _execute(nb: dict, cwd: Path) -> nbformat.NotebookNode:
    node = nbformat.reads(json.dumps(nb), as_version=4)
    execute(node, cwd, timeout=900)
    return node


def _assert_checks_not_attempted(executed):
    checks = [c for c in executed.cells if is_check_cell(c)]
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "not attempted yet" in text, f"check cell {cell.source!r} printed {text!r}"
    return len(checks)


@pytest.mark.slow
def test_synthetic_student_edition_runs_with_the_exercise_not_attempted(synthetic, tmp_path):
    student, _ = student_notebook(synthetic, "synthetic.ipynb")
    executed = _execute(student, tmp_path)
    assert _assert_checks_not_attempted(executed) == 1
    assert executed.cells[4].outputs[0]["text"] == "2\n"  # the cells after the exercise still run


@pytest.mark.parametrize("notebook", REAL_NOTEBOOKS, ids=lambda p: p.stem)
def test_real_student_edition_has_no_solution_text(notebook):
    instructor = json.loads(notebook.read_text(encoding="utf-8"))
    student = student_notebook(instructor, notebook.name, intro=True)[0]
    _assert_no_solution_text(instructor, student)
    _assert_no_written_answer(instructor, student, notebook.name)
    assert "jupytext" not in student["metadata"], "the pairing metadata would make JupyterLab write a .py"


def _assert_no_written_answer(instructor, student, name):
    """No line of a model answer or a rubric in ``student`` (beyond lines the instructor edition
    also has outside written answers), and one empty answer cell per written answer."""
    answers = markers.written_answers(instructor, name)
    elsewhere = {line.strip() for cell in instructor["cells"] if not markers.looks_written(cell_source(cell))
                 for line in cell_source(cell).split("\n")}
    text = "\n".join(_sources(student))
    lines = {line.strip() for line in text.split("\n")}
    for answer in answers:
        secret = {line.strip() for line in (answer.model_answer + "\n" + answer.rubric_markdown()).split("\n")}
        leaked = [line for line in secret - elsewhere if line and line in lines]
        assert not leaked, f"{name}: written answer {answer.name} leaks {leaked}"
    assert "WRITTEN ANSWER" not in text and markers.RUBRIC not in text
    stubs = [c for c in student["cells"] if cell_source(c).startswith("*Your answer (graded by hand")]
    assert len(stubs) == len(answers)


def test_a_written_answer_becomes_an_empty_answer_cell_and_a_set_opens_with_its_intro(written_notebook):
    nb, answer = written_notebook
    student, n = student_notebook(nb, "01_score_function.ipynb", intro=True)
    texts = _sources(student)
    assert texts[0].startswith(INTRO_MARK) and "Problem set 1" in texts[0] and "not attempted yet" in texts[0]
    assert f"*Your answer (graded by hand, {answer.points} points):*" in texts
    assert n == 1
    _assert_no_written_answer(nb, student, "01_score_function.ipynb")
    nbformat.validate(nbformat.from_dict(student))
    # a notebook that opens no problem set gets no introduction
    assert not _sources(student_notebook(nb, "02_explicit_implicit_score_matching.ipynb", intro=True)[0])[0].startswith(
        INTRO_MARK)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", REAL_NOTEBOOKS, ids=lambda p: p.stem)
def test_real_student_edition_runs_top_to_bottom(notebook):
    """Every notebook's student edition runs (in the notebooks' folder, so relative paths
    resolve as they do from student/) and each check cell reports "not attempted yet"."""
    student, _ = student_notebook(json.loads(notebook.read_text(encoding="utf-8")), notebook.name)
    _assert_checks_not_attempted(_execute(student, NOTEBOOKS))


def _think_section(nb: dict) -> str:
    """The markdown of a notebook's "Think" section: from its heading to the next heading of
    the same level."""
    text, inside = [], False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in cell_source(cell).split("\n"):
            if line.startswith("## "):
                inside = line.lower().startswith("## think")
            if inside:
                text.append(line)
    return "\n".join(text)


def _questions_and_answers(section: str) -> tuple[int, int]:
    questions, answers, in_answer = 0, 0, False
    for line in section.split("\n"):
        stripped = line.strip()
        if stripped == markers.BEGIN_ANSWER:
            answers, in_answer = answers + 1, True
        elif stripped == markers.END_ANSWER:
            in_answer = False
        elif not in_answer and re.match(r"^\d+\.\s", line):  # a numbered question, not indented
            questions += 1
    return questions, answers


@pytest.mark.parametrize("notebook", REAL_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_think_question_has_a_model_answer_that_only_the_instructor_sees(notebook):
    instructor = json.loads(notebook.read_text(encoding="utf-8"))
    questions, answers = _questions_and_answers(_think_section(instructor))
    assert questions >= 1, "no Think questions"
    assert answers == questions, f"{questions} Think questions, {answers} model answers"
    student, _ = student_notebook(instructor, notebook.name)
    assert _questions_and_answers(_think_section(student)) == (questions, 0)
    assert "Model answer" not in json.dumps(student)

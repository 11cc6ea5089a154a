"""The marks the instructor notebooks carry, and the cells they make special.

* **Solutions**, marked as nbgrader marks them, on lines of their own: in code cells from
  ``### BEGIN SOLUTION`` to ``### END SOLUTION`` (:func:`stub_code` replaces the region by
  ``# YOUR CODE HERE`` and :data:`STUB`, indented like the BEGIN line); in markdown cells from
  ``<!-- BEGIN SOLUTION -->`` to ``<!-- END SOLUTION -->`` (:func:`strip_markdown` removes it).
* **Model answers** to the "Think" questions: a markdown block from the line
  ``<details><summary>Model answer</summary>`` to the next line ``</details>``
  (:func:`drop_model_answers` removes it; other ``<details>`` blocks, hints, stay).
* **Written answers**, graded by hand: a markdown cell that is exactly ::

      <!-- BEGIN WRITTEN ANSWER name -->
      **Model answer.** ... (markdown and LaTeX)

      <!-- RUBRIC -->
      - 1 point: states that ...
      - 2 points: derives ...
      <!-- END WRITTEN ANSWER -->

  with ``name`` a :class:`~lessons_lib.course.checks.Written` of the registry and rubric lines
  ``- N point(s): criterion`` that sum to its points (:func:`written_answer` parses and checks
  it; :func:`answer_stub` is what students get instead).
* **Check cells**: code cells that call the check of a registered exercise,
  ``check_<name>(...)`` with ``name`` in :data:`lessons_lib.course.checks.REGISTRY`
  (:func:`is_check_cell`, :func:`check_called`); a call of any other ``check_…`` function is an
  ordinary cell.

A marker without its partner, a nested one, or a misspelt one (``## BEGIN SOLUTION``, text on
the marker's line) raises :class:`MarkerError` naming the place, so that a typo never leaks a
solution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .checks import REGISTRY, Exercise, Written

BEGIN_CODE, END_CODE = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_MARKDOWN, END_MARKDOWN = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
BEGIN_ANSWER, END_ANSWER = "<details><summary>Model answer</summary>", "</details>"
STUB = 'raise NotImplementedError("Replace this line with your solution.")'

# Anything that looks like a marker, so that a misspelt one fails instead of leaking a solution.
_CODE_MARKER = re.compile(r"#+\s*(BEGIN|END)\s+SOLUTION", re.IGNORECASE)
_MARKDOWN_MARKER = re.compile(r"<!--\s*(BEGIN|END)\s+SOLUTION\s*-->", re.IGNORECASE)
_ANSWER_MARKER = re.compile(r"<summary>\s*model answer", re.IGNORECASE)
_CHECK_CALL = re.compile(r"(?<!\w)check_(\w+)\s*\(")
BEGIN_WRITTEN = "<!-- BEGIN WRITTEN ANSWER {name} -->"
RUBRIC, END_WRITTEN = "<!-- RUBRIC -->", "<!-- END WRITTEN ANSWER -->"
_BEGIN_WRITTEN = re.compile(r"<!-- BEGIN WRITTEN ANSWER ([A-Za-z_]\w*) -->")
_WRITTEN_MARKER = re.compile(r"<!--\s*(BEGIN|END)[\s_-]*WRITTEN|<!--\s*RUBRIC|WRITTEN\s+ANSWER\s*-->", re.IGNORECASE)
_RUBRIC_LINE = re.compile(r"- (\d+) points?: (\S.*)")


class MarkerError(ValueError):
    """A solution region is malformed: BEGIN without END, END without BEGIN, nested, misspelt."""


@dataclass(frozen=True)
class Region:
    begin: int  # index of the BEGIN line
    end: int  # index of the END line


def cell_source(cell: dict) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def find_regions(
    lines: list[str], begin: str, end: str, pattern: re.Pattern, where: str, stray_end: bool = False
) -> list[Region]:
    """The regions from a line ``begin`` to the next line ``end``; a malformed marker (nested,
    unclosed, misspelt per ``pattern``, or an ``end`` alone unless ``stray_end``) raises."""
    regions: list[Region] = []
    opened: int | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == begin:
            if opened is not None:
                raise MarkerError(
                    f"{where}: '{begin}' on line {i + 1} inside the region opened on line "
                    f"{opened + 1}; solution regions cannot be nested"
                )
            opened = i
        elif text == end:
            if opened is None:
                if stray_end:  # e.g. the </details> of a hint
                    continue
                raise MarkerError(f"{where}: '{end}' on line {i + 1} without a '{begin}' before it")
            regions.append(Region(opened, i))
            opened = None
        elif pattern.search(text):
            raise MarkerError(
                f"{where}: line {i + 1} looks like a marker but is not one: {text!r}; "
                f"write '{begin}' or '{end}' alone on its line"
            )
    if opened is not None:
        raise MarkerError(f"{where}: '{begin}' on line {opened + 1} has no '{end}' after it")
    return regions


def stub_code(source: str, where: str) -> tuple[str, int]:
    """Replace each solution region of a code cell by the stub; return (source, n_regions)."""
    lines = source.split("\n")
    regions = find_regions(lines, BEGIN_CODE, END_CODE, _CODE_MARKER, where)
    for region in reversed(regions):
        marker = lines[region.begin]
        indent = marker[: len(marker) - len(marker.lstrip())]
        lines[region.begin : region.end + 1] = [f"{indent}# YOUR CODE HERE", f"{indent}{STUB}"]
    return "\n".join(lines), len(regions)


def strip_markdown(source: str, where: str) -> tuple[str, int]:
    """Remove each solution region of a markdown cell; return (source, n_regions)."""
    lines = source.split("\n")
    regions = find_regions(lines, BEGIN_MARKDOWN, END_MARKDOWN, _MARKDOWN_MARKER, where)
    for region in reversed(regions):
        del lines[region.begin : region.end + 1]
    return "\n".join(lines).strip("\n") if regions else source, len(regions)


def drop_model_answers(source: str, where: str) -> tuple[str, int]:
    """Remove each model-answer block of a markdown cell; return (source, n_blocks)."""
    lines = source.split("\n")
    regions = find_regions(lines, BEGIN_ANSWER, END_ANSWER, _ANSWER_MARKER, where, stray_end=True)
    for region in reversed(regions):
        del lines[region.begin : region.end + 1]
        if 0 < region.begin < len(lines) and not lines[region.begin].strip() and not lines[region.begin - 1].strip():
            del lines[region.begin]  # one blank line where the block was, not two
    return ("\n".join(lines).strip("\n") if regions else source), len(regions)


def code_solutions(nb: dict, name: str = "notebook") -> list[list[str]]:
    """The lines inside each code solution region of a notebook (markers checked as always)."""
    found = []
    for index, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") == "code":
            lines = cell_source(cell).split("\n")
            for region in find_regions(lines, BEGIN_CODE, END_CODE, _CODE_MARKER, f"{name}, cell {index}"):
                found.append(lines[region.begin + 1 : region.end])
    return found


def check_called(cell: dict) -> str | None:
    """The first registered check a code cell calls (``check_<name>``), else None."""
    if cell.get("cell_type") != "code":
        return None
    for match in _CHECK_CALL.finditer(cell_source(cell)):
        if isinstance(REGISTRY.get(match.group(1)), Exercise):
            return f"check_{match.group(1)}"
    return None


def is_check_cell(cell: dict) -> bool:
    """A code cell that calls the check of a registered exercise."""
    return check_called(cell) is not None


# --------------------------------------------------------------------------- written answers
@dataclass(frozen=True)
class WrittenAnswer:
    """A written answer cell: its registered entry, the model answer and the rubric."""

    entry: Written
    model_answer: str
    rubric: tuple[tuple[int, str], ...]  # (points, criterion), in order
    before: str = ""  # markdown in the same cell before the BEGIN line
    after: str = ""  # markdown in the same cell after the END line

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def points(self) -> int:
        return self.entry.points

    def rubric_markdown(self) -> str:
        return "\n".join(f"- {n} point{'s' if n != 1 else ''}: {text}" for n, text in self.rubric)


def looks_written(source: str) -> bool:
    """Whether a markdown cell holds anything like a written-answer marker (well formed or not)."""
    return bool(_WRITTEN_MARKER.search(source))


def written_answer(source: str, where: str) -> WrittenAnswer | None:
    """The written answer a markdown cell holds, None for any other cell; a malformed one raises
    :class:`MarkerError` naming ``where``: a misspelt marker, no END, two answers in one cell, no
    or two RUBRIC lines, an unknown name (or one registered as a checked exercise), a rubric line
    not of the form ``- N point(s): criterion``, rubric points that do not sum to the registered
    points. Markdown before the BEGIN line or after the END line (jupytext merges the next
    markdown into the cell when no ``# %% [markdown]`` separates them) is kept in
    :attr:`WrittenAnswer.before` and :attr:`WrittenAnswer.after`, to become cells of their own."""
    if not looks_written(source):
        return None
    lines = source.split("\n")
    begins, ends, rubrics = [], [], []
    for i, line in enumerate(lines):
        text = line.strip()
        if _BEGIN_WRITTEN.fullmatch(text):
            begins.append(i)
        elif text == END_WRITTEN:
            ends.append(i)
        elif text == RUBRIC:
            rubrics.append(i)
        elif looks_written(text):
            raise MarkerError(f"{where}: line {i + 1} looks like a written-answer marker but is not one: {text!r}; "
                              f"write '{BEGIN_WRITTEN.format(name='name')}', '{RUBRIC}' or '{END_WRITTEN}' alone "
                              "on its line")
    if not begins:
        first = (ends or rubrics or [0])[0]
        raise MarkerError(f"{where}: line {first + 1}: a written-answer marker without the line "
                          f"'{BEGIN_WRITTEN.format(name='name')}' before it")
    if len(begins) > 1 or len(ends) > 1:
        raise MarkerError(f"{where}: {max(len(begins), len(ends))} written answers in one cell; one per cell")
    begin = begins[0]
    if not ends or ends[0] < begin:
        raise MarkerError(f"{where}: the written answer opened on line {begin + 1} has no '{END_WRITTEN}' after it")
    end = ends[0]
    inside = [i for i in rubrics if begin < i < end]
    if len(inside) != 1 or len(rubrics) != 1:
        raise MarkerError(f"{where}: a written answer has exactly one '{RUBRIC}' line between the model answer "
                          f"and the rubric, found {len(inside)} inside and {len(rubrics) - len(inside)} outside")
    name = _BEGIN_WRITTEN.fullmatch(lines[begin].strip()).group(1)
    entry = REGISTRY.get(name)
    if not isinstance(entry, Written):
        kind = "a checked exercise, not a Written" if isinstance(entry, Exercise) else "not registered"
        raise MarkerError(f"{where}: written answer {name!r} is {kind}; register it with "
                          f"register(Written(name={name!r}, lesson=..., summary=..., points=...)) in the lesson's "
                          "file of lessons_lib/course/checks")
    model = "\n".join(lines[begin + 1:inside[0]]).strip("\n")
    if not model.strip():
        raise MarkerError(f"{where}: written answer {name!r} has no model answer before '{RUBRIC}'")
    rubric = []
    for i in range(inside[0] + 1, end):
        text = lines[i].strip()
        if not text:
            continue
        match = _RUBRIC_LINE.fullmatch(text)
        if not match:
            raise MarkerError(f"{where}: line {i + 1} of the rubric of {name!r} is not '- N point(s): criterion': "
                              f"{text!r}")
        rubric.append((int(match.group(1)), match.group(2).strip()))
    if not rubric:
        raise MarkerError(f"{where}: written answer {name!r} has no rubric lines after '{RUBRIC}'")
    total = sum(n for n, _ in rubric)
    if total != entry.points:
        raise MarkerError(f"{where}: the rubric of {name!r} gives {total} points, the registry {entry.points}")
    before = "\n".join(lines[:begin]).strip("\n")
    after = "\n".join(lines[end + 1:]).strip("\n")
    return WrittenAnswer(entry, model, tuple(rubric), before, after)


def split_written(cell: dict, answer: WrittenAnswer, answer_source: str) -> list[dict]:
    """The cells a written answer cell becomes: the markdown before it, the answer cell (its
    source ``answer_source``, its metadata kept), the markdown after it; empty parts dropped."""
    import copy

    cells = []
    for part, text in (("before", answer.before), ("answer", answer_source), ("after", answer.after)):
        if not text.strip():
            continue
        new = copy.deepcopy(cell) if part == "answer" else {"cell_type": "markdown", "metadata": {}}
        new["source"] = text
        new.pop("attachments", None)
        if part != "answer" and "id" in cell:
            new["id"] = f"{cell['id']}-{part}"[:64]
        cells.append(new)
    return cells


def answer_stub(points: int) -> str:
    """The empty answer cell students get instead of a written answer."""
    return f"*Your answer (graded by hand, {points} point{'s' if points != 1 else ''}):*"


def written_answers(nb: dict, name: str = "notebook") -> list[WrittenAnswer]:
    """Every written answer of a notebook, in order (markers checked)."""
    found = []
    for index, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") == "markdown":
            answer = written_answer(cell_source(cell), f"{name}, cell {index}")
            if answer is not None:
                found.append(answer)
    return found

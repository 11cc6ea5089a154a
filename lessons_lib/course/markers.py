"""The marks the instructor notebooks carry, and the cells they make special.

* **Solutions**, marked as nbgrader marks them, on lines of their own: in code cells from
  ``### BEGIN SOLUTION`` to ``### END SOLUTION`` (:func:`stub_code` replaces the region by
  ``# YOUR CODE HERE`` and :data:`STUB`, indented like the BEGIN line); in markdown cells from
  ``<!-- BEGIN SOLUTION -->`` to ``<!-- END SOLUTION -->`` (:func:`strip_markdown` removes it).
* **Model answers** to the "Think" questions: a markdown block from the line
  ``<details><summary>Model answer</summary>`` to the next line ``</details>``
  (:func:`drop_model_answers` removes it; other ``<details>`` blocks, hints, stay).
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

from .checks import REGISTRY

BEGIN_CODE, END_CODE = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_MARKDOWN, END_MARKDOWN = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
BEGIN_ANSWER, END_ANSWER = "<details><summary>Model answer</summary>", "</details>"
STUB = 'raise NotImplementedError("Replace this line with your solution.")'

# Anything that looks like a marker, so that a misspelt one fails instead of leaking a solution.
_CODE_MARKER = re.compile(r"#+\s*(BEGIN|END)\s+SOLUTION", re.IGNORECASE)
_MARKDOWN_MARKER = re.compile(r"<!--\s*(BEGIN|END)\s+SOLUTION\s*-->", re.IGNORECASE)
_ANSWER_MARKER = re.compile(r"<summary>\s*model answer", re.IGNORECASE)
_CHECK_CALL = re.compile(r"(?<!\w)check_(\w+)\s*\(")


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
        if match.group(1) in REGISTRY:
            return f"check_{match.group(1)}"
    return None


def is_check_cell(cell: dict) -> bool:
    """A code cell that calls the check of a registered exercise."""
    return check_called(cell) is not None

"""``python -m lessons_lib.course.checks --list | --table [FILE]``.

``--list`` prints the registry: each exercise's name, lesson, points and forbidden library
calls (a written answer: "by hand"). ``--table`` prints the exercise table and the problem-set
table; ``--table FILE`` rewrites them in FILE between the lines :data:`BEGIN` and :data:`END`,
and :data:`SETS_BEGIN` and :data:`SETS_END` (``docs/teaching.md`` holds them so).
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import REGISTRY, Exercise, exercise_table

BEGIN = "<!-- exercise table: begin (python -m lessons_lib.course.checks --table docs/teaching.md) -->"
END = "<!-- exercise table: end -->"
SETS_BEGIN = "<!-- problem-set table: begin (python -m lessons_lib.course.checks --table docs/teaching.md) -->"
SETS_END = "<!-- problem-set table: end -->"


def problem_set_table() -> str:
    from lessons_lib.course.problem_sets import problem_set_table as table  # the course layer above

    return table()
USAGE = "usage: python -m lessons_lib.course.checks --list | --table [FILE]"


def _qualname(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def registry_listing() -> str:
    """One line per exercise: name, lesson, points, forbidden calls."""
    lines = []
    for ex in REGISTRY.values():
        if isinstance(ex, Exercise):
            forbidden = ", ".join(_qualname(f) for f in ex.forbidden)
            lines.append(f"{ex.name:24s} {ex.lesson:38s} {ex.points:2d} points  forbidden: {forbidden}")
        else:
            lines.append(f"{ex.name:24s} {ex.lesson:38s} {ex.points:2d} points  written, graded by hand")
    return "\n".join(lines)


def marked_block(text: str, begin: str = BEGIN, end: str = END) -> str:
    """What ``text`` holds between ``begin`` and ``end`` (``ValueError`` without them)."""
    if begin not in text or end not in text:
        raise ValueError(f"no table: the lines {begin!r} and {end!r} are missing")
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def _replace(text: str, begin: str, end: str, table: str) -> str:
    marked_block(text, begin, end)
    before, rest = text.split(begin, 1)
    after = rest.split(end, 1)[1]
    return f"{before}{begin}\n{table}\n{end}{after}"


def rewrite_table(path: Path) -> None:
    """Replace the exercise table (and the problem-set table, when ``path`` has its markers) in
    ``path`` with the registry's."""
    text = _replace(path.read_text(encoding="utf-8"), BEGIN, END, exercise_table())
    if SETS_BEGIN in text:
        text = _replace(text, SETS_BEGIN, SETS_END, problem_set_table())
    path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> None:
    if argv == ["--list"]:
        print(registry_listing())
    elif argv == ["--table"]:
        print(exercise_table() + "\n\n" + problem_set_table())
    elif len(argv) == 2 and argv[0] == "--table":
        try:
            rewrite_table(Path(argv[1]))
        except (OSError, ValueError) as err:
            raise SystemExit(f"error: {err}") from err
        print(f"{argv[1]}: exercise table rewritten ({len(REGISTRY)} exercises)")
    else:
        raise SystemExit(USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])

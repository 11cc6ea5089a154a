"""``python -m lessons_lib.course.checks --list | --table [FILE]``.

``--list`` prints the registry: each exercise's name, lesson, points and forbidden library
calls. ``--table`` prints the exercise table; ``--table FILE`` rewrites it in FILE between the
lines :data:`BEGIN` and :data:`END` (``docs/teaching.md`` holds it so).
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import REGISTRY, exercise_table

BEGIN = "<!-- exercise table: begin (python -m lessons_lib.course.checks --table docs/teaching.md) -->"
END = "<!-- exercise table: end -->"
USAGE = "usage: python -m lessons_lib.course.checks --list | --table [FILE]"


def _qualname(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def registry_listing() -> str:
    """One line per exercise: name, lesson, points, forbidden calls."""
    lines = []
    for ex in REGISTRY.values():
        forbidden = ", ".join(_qualname(f) for f in ex.forbidden)
        lines.append(f"{ex.name:24s} {ex.lesson:38s} {ex.points:2d} points  forbidden: {forbidden}")
    return "\n".join(lines)


def marked_block(text: str) -> str:
    """What ``text`` holds between :data:`BEGIN` and :data:`END` (``ValueError`` without them)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no exercise table: the lines {BEGIN!r} and {END!r} are missing")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def rewrite_table(path: Path) -> None:
    """Replace the exercise table in ``path`` with the registry's."""
    text = path.read_text(encoding="utf-8")
    marked_block(text)
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{BEGIN}\n{exercise_table()}\n{END}{after}", encoding="utf-8")


def main(argv: list[str]) -> None:
    if argv == ["--list"]:
        print(registry_listing())
    elif argv == ["--table"]:
        print(exercise_table())
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

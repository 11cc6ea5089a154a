"""Exercise checks: compare a student's function with the library's reference and say what is wrong.

Each ``check_<exercise>(fn)`` calls ``fn`` on a few seeded test cases, compares the result with
the exercise's reference built from the library, and prints ✓ / "not attempted yet" or raises
an ``AssertionError`` with a diagnosis (:mod:`.engine` says how; grading mode and the own-work
guard are there too). The exercises live one file per lesson (``lesson01.py`` … ``lesson07.py``),
each one :class:`~.engine.Exercise` (or :class:`~.engine.Written`, a written answer graded by
hand) passed to :func:`~.engine.register`; everything below is
derived from :data:`REGISTRY`:

* the ``check_<name>`` functions and ``__all__``;
* :data:`REFERENCES` (name → reference), :data:`FORBIDDEN_CALLS` (name → the library functions
  an answer may not call), :data:`POINTS` (grade id → nbgrader points, the written answers'
  ``answer_<name>`` included);
* :func:`passed` and :func:`student_or_reference`: what a check recorded in this kernel;
* :func:`exercise_table`, the table below and in ``docs/teaching.md``
  (``python -m lessons_lib.course.checks --table docs/teaching.md`` rewrites it there).

The exercises:

"""

from __future__ import annotations

from collections.abc import Callable

from . import lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07  # noqa: F401 (they register)
from .engine import (
    GRADING_ENV,
    NBGRADER_ENV,
    OUTCOMES,
    REGISTRY,
    Derived,
    Exercise,
    NotOwnWorkError,
    Written,
    copied_share,
    exercises,
    grade_id,
    passed,
    register,
    student_or_reference,
)

REFERENCES: Derived = Derived(lambda ex: ex.reference)
"""The reference solution of each exercise, with the exercise's signature, built on the library."""

FORBIDDEN_CALLS: Derived = Derived(lambda ex: ex.forbidden)
"""For each exercise, the library functions that *are* its answer (or contain it): an answer that
calls one of them, directly or not, is not the student's own work (nor one that calls the
exercise's reference). The building blocks a lesson teaches before the exercise (autograd, a
score model, the Gaussian's log-density, the single Langevin step inside the annealed sampler)
stay free."""

POINTS: Derived = Derived(lambda ex: ex.points, key=grade_id, written=True)
"""What each graded cell is worth in nbgrader, by its grade id: ``check_<name>`` for a check,
``answer_<name>`` for a written answer."""


def exercise_table() -> str:
    """The markdown table of the registry: lesson, exercise, how it is graded, grade id, points."""
    rows = ["| notebook | exercise | graded | grade id | points |", "| --- | --- | --- | --- | ---: |"]
    for ex in REGISTRY.values():
        if isinstance(ex, Exercise):
            rows.append(f"| `{ex.lesson}` | `{ex.name}{ex.signature}`: {ex.summary} | check | "
                        f"`{ex.check_name}` | {ex.points} |")
        else:
            rows.append(f"| `{ex.lesson}` | {ex.name}: {ex.summary} (written) | by hand | `{ex.grade_id}` | "
                        f"{ex.points} |")
    return "\n".join(rows)


def check_function(exercise: Exercise) -> Callable[[Callable], None]:
    """The public ``check_<name>(fn)`` of an exercise."""

    def check(fn: Callable):
        __tracebackhide__ = True
        return exercise.check(fn)  # a number only for partial credit while graded outside IPython

    check.__name__ = check.__qualname__ = exercise.check_name
    check.__doc__ = exercise.description
    check.__module__ = __name__
    return check


def __getattr__(name: str):
    """``check_<name>`` of an exercise registered after this package was imported."""
    exercise = REGISTRY.get(name.removeprefix("check_")) if name.startswith("check_") else None
    if not isinstance(exercise, Exercise):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = check_function(exercise)
    return globals()[name]


globals().update({ex.check_name: check_function(ex) for ex in exercises()})
__doc__ += exercise_table() + "\n"
__all__ = [ex.check_name for ex in exercises()] + [
    "REGISTRY", "REFERENCES", "FORBIDDEN_CALLS", "POINTS", "Exercise", "Written", "register", "exercise_table",
    "exercises", "grade_id", "passed", "student_or_reference", "OUTCOMES", "copied_share",
    "NotOwnWorkError", "GRADING_ENV", "NBGRADER_ENV",
]

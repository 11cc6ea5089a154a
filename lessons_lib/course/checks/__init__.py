"""Exercise checks: compare a student's function with the library's reference and say what is wrong.

Each ``check_<exercise>(fn)`` calls ``fn`` on a few seeded test cases, compares the result with
the exercise's reference built from the library, and prints ✓ / "not attempted yet" or raises
an ``AssertionError`` with a diagnosis (:mod:`.engine` says how; grading mode and the own-work
guard are there too). The exercises live one file per lesson (``lesson01.py`` … ``lesson07.py``),
each one :class:`~.engine.Exercise` passed to :func:`~.engine.register`; everything below is
derived from :data:`REGISTRY`:

* the ``check_<name>`` functions and ``__all__``;
* :data:`REFERENCES` (name → reference), :data:`FORBIDDEN_CALLS` (name → the library functions
  an answer may not call), :data:`POINTS` (check name → nbgrader points);
* :func:`exercise_table`, the table below and in ``docs/teaching.md``
  (``python -m lessons_lib.course.checks --table docs/teaching.md`` rewrites it there).

The exercises:

"""

from __future__ import annotations

from collections.abc import Callable

from . import lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07  # noqa: F401 (they register)
from .engine import GRADING_ENV, NBGRADER_ENV, REGISTRY, Derived, Exercise, NotOwnWorkError, register

REFERENCES: Derived = Derived(lambda ex: ex.reference)
"""The reference solution of each exercise, with the exercise's signature, built on the library."""

FORBIDDEN_CALLS: Derived = Derived(lambda ex: ex.forbidden)
"""For each exercise, the library functions that *are* its answer (or contain it): an answer that
calls one of them, directly or not, is not the student's own work (nor one that calls the
exercise's reference). The building blocks a lesson teaches before the exercise (autograd, a
score model, the Gaussian's log-density, the single Langevin step inside the annealed sampler)
stay free."""

POINTS: Derived = Derived(lambda ex: ex.points, key=lambda ex: ex.check_name)
"""What each check is worth in nbgrader, by the check's name (its grade id)."""


def exercise_table() -> str:
    """The markdown table of the registered exercises: lesson, signature, check, points."""
    rows = ["| notebook | exercise | check | points |", "| --- | --- | --- | ---: |"]
    rows += [
        f"| `{ex.lesson}` | `{ex.name}{ex.signature}`: {ex.summary} | `{ex.check_name}` | {ex.points} |"
        for ex in REGISTRY.values()
    ]
    return "\n".join(rows)


def check_function(exercise: Exercise) -> Callable[[Callable], None]:
    """The public ``check_<name>(fn)`` of an exercise."""

    def check(fn: Callable) -> None:
        __tracebackhide__ = True
        exercise.check(fn)

    check.__name__ = check.__qualname__ = exercise.check_name
    check.__doc__ = exercise.description
    check.__module__ = __name__
    return check


def __getattr__(name: str):
    """``check_<name>`` of an exercise registered after this package was imported."""
    exercise = REGISTRY.get(name.removeprefix("check_")) if name.startswith("check_") else None
    if exercise is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = check_function(exercise)
    return globals()[name]


globals().update({ex.check_name: check_function(ex) for ex in REGISTRY.values()})
__doc__ += exercise_table() + "\n"
__all__ = [ex.check_name for ex in REGISTRY.values()] + [
    "REGISTRY", "REFERENCES", "FORBIDDEN_CALLS", "POINTS", "Exercise", "register", "exercise_table",
    "NotOwnWorkError", "GRADING_ENV", "NBGRADER_ENV",
]

r"""The grading engine: an exercise, its cases and known mistakes, the run, grading mode and the
own-work guard.

An :class:`Exercise` is one object: the function the student writes (``name``), the library's
reference with the same signature, the library functions that would be its answer
(``forbidden``), its points, its seeded test cases and its known wrong answers. :func:`register`
adds it to :data:`REGISTRY`, from which everything else is derived. :func:`run` checks a
student's function against it and

* prints ``✓ <exercise> matches the reference on N test cases`` when every case agrees;
* prints ``○ <exercise>: not attempted yet ...`` while the function still raises
  ``NotImplementedError``, unless the notebook is being graded (:func:`grading`): then that is
  a failure too;
* raises :class:`NotOwnWorkError` when the function reaches one of the exercise's forbidden
  library functions or its reference, however it gets there: every call runs under a profiler
  hook that watches for their code objects;
* otherwise raises ``AssertionError`` with a diagnosis: the type, the shape, the one known
  mistake that explains *every* failing case, or the numbers and the formula to aim for; for a
  loss, also the gradient with respect to the model's parameters.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

Tensor = torch.Tensor

# Set to 1 to grade without nbgrader (nbgrader's own NBGRADER_EXECUTION is enough with it): a
# check whose exercise still raises NotImplementedError then fails instead of printing
# "not attempted yet".
GRADING_ENV = "LESSONS_LIB_GRADING"
NBGRADER_ENV = "NBGRADER_EXECUTION"

# Agreement with the reference (float32 inputs; the student may sum in another order).
RTOL, ATOL = 1e-4, 1e-5
# Agreement with a known wrong answer.
MISTAKE_RTOL, MISTAKE_ATOL = 1e-3, 1e-4

DEFAULT_RANDOM_HINT = "use the inputs you are given and do not draw new random numbers"


@dataclass(frozen=True)
class Case:
    """One test case: ``build()`` returns fresh arguments (same seed, same values) every call."""

    label: str
    build: Callable[[], tuple]


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``wrong(*args)`` is what it returns; ``message`` explains it."""

    message: str
    wrong: Callable[..., Tensor]
    credit: float = 0.5
    """The fraction of the exercise's points this slip earns under grading (nbgrader's partial
    credit): a named slip is most of the way there; 0 gives none."""


@dataclass(frozen=True)
class Exercise:
    """One exercise, everything about it in one place.

    ``name`` is the function the student writes in lesson ``lesson`` (a notebook's stem), and
    ``check_<name>`` its check; ``signature`` and ``summary`` are its row in the tables;
    ``formula`` is what the messages say it asks for; ``reference(*args)`` is the right answer,
    built on the library; calling any of ``forbidden`` (or ``reference``) from an answer is not
    the student's own work; ``points`` is what the check is worth in nbgrader; ``cases()`` gives
    the test cases and ``mistakes`` the known wrong answers, tried in order. ``is_loss``: the
    result is a scalar loss whose gradient must reach the parameters of the model ``args[0]``.
    ``precheck(exercise, fn)``, if given, runs first and may raise a diagnosis of its own.
    ``description`` is the check's docstring.
    """

    name: str
    lesson: str
    signature: str
    summary: str
    formula: str
    reference: Callable
    forbidden: tuple[Callable, ...]
    points: int
    cases: Callable[[], list[Case]]
    mistakes: Sequence[Mistake]
    description: str
    is_loss: bool = False
    reduce_hint: str = ""
    random_hint: str = DEFAULT_RANDOM_HINT
    error_hint: Callable[[str], str] = lambda message: ""
    grad_hint: str = ""
    precheck: Callable[[Exercise, Callable], None] | None = None

    @property
    def check_name(self) -> str:
        return f"check_{self.name}"

    def check(self, fn: Callable):
        """Check the student's ``fn`` (see :func:`run`)."""
        __tracebackhide__ = True
        return run(self, fn)


@dataclass(frozen=True)
class Written:
    """A written answer, graded by hand against a rubric: a derivation or an explanation.

    ``name`` names the answer cell of lesson ``lesson`` (the cell between
    ``<!-- BEGIN WRITTEN ANSWER name -->`` and ``<!-- END WRITTEN ANSWER -->``, see
    :mod:`lessons_lib.course.markers`); ``summary`` is its row in the tables; ``points`` what it is
    worth, the sum of its rubric's lines. Its nbgrader grade id is :attr:`grade_id`,
    ``answer_<name>``.
    """

    name: str
    lesson: str
    summary: str
    points: int

    @property
    def grade_id(self) -> str:
        return f"answer_{self.name}"


REGISTRY: dict[str, Exercise | Written] = {}
"""Every exercise of the course, by name, in the order the lessons register them: the checked
ones (:class:`Exercise`) and the written answers graded by hand (:class:`Written`)."""


def grade_id(entry: Exercise | Written) -> str:
    """The nbgrader grade id of an entry: ``check_<name>`` for a check, ``answer_<name>`` for a
    written answer."""
    return entry.check_name if isinstance(entry, Exercise) else entry.grade_id


def register(exercise: Exercise | Written) -> Exercise | Written:
    """Add ``exercise`` (an :class:`Exercise` or a :class:`Written`) to :data:`REGISTRY` and
    return it; a second entry of the same name, a missing forbidden list or points that are not a
    positive integer raise ``ValueError``."""
    if not isinstance(exercise, (Exercise, Written)):
        raise TypeError(f"register() takes an Exercise or a Written, got {type(exercise).__name__}")
    if not exercise.name.isidentifier():
        raise ValueError(f"an exercise's name is the function the student writes, got {exercise.name!r}")
    if exercise.name in REGISTRY:
        raise ValueError(f"exercise {exercise.name!r} is registered twice ({REGISTRY[exercise.name].lesson}, "
                         f"{exercise.lesson})")
    if isinstance(exercise, Exercise) and not exercise.forbidden:
        raise ValueError(f"{exercise.name}: list the library functions that would be its answer in forbidden=")
    if isinstance(exercise.points, bool) or not isinstance(exercise.points, int) or exercise.points < 1:
        raise ValueError(f"{exercise.name}: points must be a positive integer, got {exercise.points!r}")
    REGISTRY[exercise.name] = exercise
    return exercise


def exercises() -> list[Exercise]:
    """The checked exercises of :data:`REGISTRY` (no written answers), in order."""
    return [ex for ex in REGISTRY.values() if isinstance(ex, Exercise)]


class Derived(Mapping):
    """A read-only mapping computed from :data:`REGISTRY` whenever it is read:
    ``key(exercise) → value(exercise)`` for every registered exercise (checked ones only, unless
    ``written=True``)."""

    def __init__(self, value: Callable[[Exercise], object], key: Callable[[Exercise], str] = lambda ex: ex.name,
                 written: bool = False):
        self._value, self._key, self._written = value, key, written

    def _items(self) -> dict:
        entries = REGISTRY.values() if self._written else exercises()
        return {self._key(ex): self._value(ex) for ex in entries}

    def __getitem__(self, key):
        return self._items()[key]

    def __iter__(self) -> Iterator:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return repr(self._items())


# --------------------------------------------------------------------------- test-case helpers
def seeded(seed: int, make: Callable[[torch.Generator], tuple]) -> Callable[[], tuple]:
    """``make(generator)`` run with everything random seeded (model weights included) and the
    caller's global random state left untouched."""

    def build() -> tuple:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return make(torch.Generator().manual_seed(seed))

    return build


def close(a: Tensor, b: Tensor, rtol: float = RTOL, atol: float = ATOL) -> bool:
    a, b = a.detach().double(), b.detach().double()
    return a.shape == b.shape and bool(torch.isfinite(a).all()) and torch.allclose(a, b, rtol=rtol, atol=atol)


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, Tensor) else type(t).__name__


def _describe(t: Tensor) -> str:
    """A short rendering of a value for a message: a scalar, or the first row."""
    t = t.detach().double()
    if t.dim() == 0:
        return f"{t.item():.6g}"
    row = t.reshape(t.shape[0], -1)[0]
    vals = ", ".join(f"{v:.4g}" for v in row[:4].tolist()) + (", ..." if row.numel() > 4 else "")
    return f"first row [{vals}]"


def _type_problem(ex: Exercise, got) -> str | None:
    if isinstance(got, Tensor):
        return None
    if ex.is_loss and isinstance(got, (int, float)):
        return (
            f"it returned a Python {type(got).__name__}, not a torch tensor. Keep the loss a tensor "
            "(no .item(), no float(...)): training has to differentiate it"
        )
    if ex.is_loss:
        return f"it returned a {type(got).__name__}; a loss is a torch tensor holding one number"
    return f"it returned a {type(got).__name__}; return a torch.Tensor"


def _shape_problem(ex: Exercise, got: Tensor, expected: Tensor) -> str | None:
    if got.shape == expected.shape:
        return None
    if ex.is_loss:
        return (
            f"it returned a tensor of shape {_shape(got)}; the loss is a single number (shape ()): "
            f"{ex.reduce_hint}"
        )
    if got.dim() == expected.dim() == 2 and got.shape == expected.shape[::-1]:
        return (
            f"it returned shape {_shape(got)}, expected {_shape(expected)}: it looks transposed "
            "(batch first: one row per point)"
        )
    if got.shape == expected.shape[:1]:
        return (
            f"it returned one number per point (shape {_shape(got)}); the result is a vector per "
            f"point, shape {_shape(expected)}"
        )
    return f"it returned shape {_shape(got)}, expected {_shape(expected)}"


# --------------------------------------------------------------------------- the own-work guard
class NotOwnWorkError(AssertionError):
    """The answer calls the library's own implementation of the exercise."""


def _qualified(code) -> str:
    functions = [f for ex in exercises() for f in (ex.reference, *ex.forbidden)]
    module = {f.__code__: f.__module__ for f in functions}.get(code, "lessons_lib")
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


def _guarded_call(ex: Exercise, fn: Callable, args: tuple):
    """``fn(*args)`` under a profiler hook that records any call of the exercise's forbidden
    functions or its reference; such a call, or an answer that removes the hook, fails."""
    __tracebackhide__ = True
    own = {f.__code__ for f in ex.forbidden}
    watched = own | {ex.reference.__code__}
    seen: list = []

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in watched:
            seen.append(frame.f_code)

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        result = fn(*args)
    finally:
        removed = sys.getprofile() is not hook
        sys.setprofile(previous)
        if seen or removed:
            # name the library function rather than the check's own wrapper around it
            named = next((code for code in seen if code in own), seen[0]) if seen else None
            what = f"calls {_qualified(named)}" if seen else "it switched off the check's call tracing (sys.setprofile)"
            raise NotOwnWorkError(
                f"{ex.name}: not your own work: {what}, the library's implementation of this "
                "exercise. Write the computation yourself from the formula "
                f"({ex.formula}); the check compares it with that implementation."
            )
    return result


BACKWARD_TWICE = (
    "the derivative inside the loss was taken without asking autograd to build a graph of it, so the "
    "graph was freed after the first derivative and the next one had nothing left to differentiate. "
    "PyTorch's message suggests keeping the graph (retain_graph), which would make this error go away "
    "but leave the loss's gradient wrong: a loss that training differentiates needs its derivatives "
    "to be differentiable themselves (torch.autograd.grad's create_graph option, which also keeps "
    "the graph)"
)
SOLVE_SHAPES = (
    "torch.linalg.solve with the matrix A and the right-hand side B solves A·X = B for X column by "
    "column: B needs as many rows as A, one per dimension, but the batch x − μ has one point per "
    "row (B, d). Arrange the points as "
    "columns before solving, and back as rows after (or solve from the other side, using that Σ "
    "is symmetric)"
)
SOLVE_SQUARE = (
    "torch.linalg.solve takes the matrix A first and the right-hand side B second; here the "
    "batch of points came first. The matrix of the system is the covariance"
)


def pytorch_diagnosis(message: str) -> tuple[str, str] | None:
    """A named diagnosis for a raw PyTorch error that a typical slip produces, and the part of
    PyTorch's own message worth quoting (without its advice when that advice is the wrong fix);
    None for any other error."""
    if "backward through the graph a second time" in message:
        return BACKWARD_TWICE, message.split(". ")[0] + "."
    if "linalg.solve" in message and "Incompatible shapes" in message:
        return SOLVE_SHAPES, message
    if "linalg.solve" in message and "square matrices" in message:
        return SOLVE_SQUARE, message
    return None


def call(ex: Exercise, fn: Callable, case: Case):
    """``(result, args)`` of ``fn`` on fresh inputs of the case; ``None`` while ``fn`` still
    raises NotImplementedError. Any other error becomes an AssertionError naming the case; a
    call of the library's implementation of the exercise raises :class:`NotOwnWorkError`."""
    __tracebackhide__ = True
    args = case.build()
    try:
        return _guarded_call(ex, fn, args), args
    except NotImplementedError:
        return None
    except NotOwnWorkError:
        raise
    except Exception as err:  # the student's code failed: say where, keep the traceback
        known = pytorch_diagnosis(str(err))
        if known is not None:
            diagnosis, said = known
            raise AssertionError(
                f"{ex.name} is not right yet: {diagnosis}\n  test case: {case.label}\n"
                f"  (PyTorch raised {type(err).__name__}: {said})"
            ) from err
        hint = ex.error_hint(str(err))
        raise AssertionError(
            f"{ex.name} raised {type(err).__name__}: {err}\n  test case: {case.label}"
            + (f"\n  Hint: {hint}" if hint else "")
        ) from err


# --------------------------------------------------------------------------- the diagnosis
def fail(ex: Exercise, case: Case, problem: str, got=None, expected=None) -> AssertionError:
    """The error a check raises: the problem, the case, the numbers when shapes agree, the formula."""
    lines = [f"{ex.name} is not right yet: {problem}.", f"  test case: {case.label}"]
    if isinstance(got, Tensor) and isinstance(expected, Tensor) and got.shape == expected.shape:
        lines.append(f"  got      {_describe(got)}")
        lines.append(f"  expected {_describe(expected)}")
    lines.append(f"  The exercise asks for {ex.formula}.")
    return AssertionError("\n".join(lines))


def _explains(mistake: Mistake, case: Case, got: Tensor) -> bool:
    """Does the wrong answer ``mistake`` give the student's result on this case?"""
    try:
        wrong = mistake.wrong(*case.build())
    except RuntimeError:  # a wrong answer that cannot even be computed here explains nothing
        return False
    return close(got, wrong, MISTAKE_RTOL, MISTAKE_ATOL)


def _named_mistake(ex: Exercise, failing: list[tuple[Case, Tensor]]) -> Mistake | None:
    """The first known wrong answer that explains every failing case, else None."""
    for mistake in ex.mistakes:
        if all(_explains(mistake, case, got) for case, got in failing):
            return mistake
    return None


def _diagnose_values(ex: Exercise, fn: Callable, failing: list[tuple[Case, Tensor]]) -> str:
    """Name the known wrong answer that explains every failing case, else describe the gap."""
    mistake = _named_mistake(ex, failing)
    if mistake is not None:
        return mistake.message
    case, got = failing[0]
    if not torch.isfinite(got.detach()).all():
        return "it returned NaN or infinite values"
    again, _ = call(ex, fn, case)
    if isinstance(again, Tensor) and not close(again, got, 1e-6, 1e-7):
        return f"it returns different values for the same inputs: {ex.random_hint}"
    expected = ex.reference(*case.build())
    if got.dim() == 0 and expected.abs() > 0:
        return f"its value differs from the reference (ratio got/expected = {got.item() / expected.item():.4g})"
    return "its values differ from the reference"


def _gradient_problem(ex: Exercise, got: Tensor, args: tuple, case: Case) -> str | None:
    """A loss must carry the reference's gradient to the parameters of the model ``args[0]``."""
    detached = (
        "the loss is detached: no gradient reaches the model's parameters, so training could not "
        "learn from it. Do not use .item(), .detach(), .numpy() or torch.no_grad() on the way"
    )
    if not got.requires_grad:
        return detached
    got_grads = torch.autograd.grad(got, list(args[0].parameters()), allow_unused=True)
    if all(g is None for g in got_grads):
        return detached
    ref_args = case.build()
    ref_grads = torch.autograd.grad(ex.reference(*ref_args), list(ref_args[0].parameters()), allow_unused=True)
    for g, r in zip(got_grads, ref_grads):
        if (g is None) != (r is None) or (g is not None and not close(g, r, 1e-3, 1e-5)):
            return "the value is right but its gradient with respect to the model's parameters is not: " + (
                ex.grad_hint or "part of the computation is detached (.detach(), .data, torch.no_grad())"
            )
    return None


# --------------------------------------------------------------------------- grading mode
def _initial_environment() -> dict[str, str]:
    """The environment this process started with (Linux: /proc/self/environ), which assignments
    to ``os.environ`` do not change; elsewhere an empty dict."""
    try:
        with open("/proc/self/environ", "rb") as file:
            raw = file.read()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _asks_for_grading(env) -> bool:
    explicit = env.get(GRADING_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return explicit or env.get(NBGRADER_ENV, "") in ("autograde", "validate")


_GRADING_SEEN = _asks_for_grading(os.environ) or _asks_for_grading(_initial_environment())


def grading() -> bool:
    """Grading mode: an exercise not attempted fails its check. On when nbgrader runs the
    notebook (``NBGRADER_EXECUTION``) or with ``LESSONS_LIB_GRADING=1``, in the environment the
    kernel started with or at any check since; once on, it stays on."""
    global _GRADING_SEEN
    _GRADING_SEEN = _GRADING_SEEN or _asks_for_grading(os.environ)
    return _GRADING_SEEN


# --------------------------------------------------------------------------- own work: a copy
COPY_THRESHOLD = 0.6
"""The share of an answer's runs of :data:`COPY_RUN` tokens found in the library's implementation
of the exercise above which the check flags it to the teacher (flagged, not failed)."""
COPY_RUN = 8  # long runs: two people who write the same formula share short runs, a copy long ones
COPY_MIN_TOKENS = 40  # a shorter answer is the formula itself: a copy cannot be told from it


def _runs(source: str) -> set[tuple[str, ...]]:
    """The runs of :data:`COPY_RUN` tokens of ``source`` without its comments, docstrings, def
    line and layout; empty when ``source`` has fewer than :data:`COPY_MIN_TOKENS` tokens."""
    import io
    import textwrap
    import tokenize

    tokens: list[str] = []
    try:
        stream = tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline)
        previous = None
        for tok in stream:
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
                continue
            if tok.type == tokenize.STRING and previous in (None, ":"):  # a docstring
                previous = tok.string
                continue
            previous = tok.string
            tokens.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set()
    if tokens[:1] == ["def"] and ":" in tokens:  # drop the signature: it is given
        tokens = tokens[tokens.index(":") + 1:]
    if len(tokens) < COPY_MIN_TOKENS:
        return set()
    return {tuple(tokens[i:i + COPY_RUN]) for i in range(len(tokens) - COPY_RUN + 1)}


def _library_runs(ex: Exercise) -> set[tuple[str, ...]]:
    import inspect

    found: set[tuple[str, ...]] = set()
    for f in (ex.reference, *ex.forbidden):
        try:
            found |= _runs(inspect.getsource(f))
        except (OSError, TypeError):
            pass
    return found


def copied_share(ex: Exercise, fn: Callable) -> float | None:
    """The share of ``fn``'s runs of tokens that also occur in the source of the exercise's
    reference and forbidden functions (:func:`inspect.getsource`); None when ``fn``'s source is
    not available or too short to tell."""
    import inspect

    try:
        mine = _runs(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    if not mine:
        return None
    return len(mine & _library_runs(ex)) / len(mine)


def _flag_copy(ex: Exercise, fn: Callable) -> None:
    share = copied_share(ex, fn)
    if share is not None and share >= COPY_THRESHOLD:
        print(f"⚑ {ex.name}: flagged for the teacher, not failed: {share:.0%} of this answer's code "
              "(token sequences) also occurs in the library's implementation of this exercise.")


# --------------------------------------------------------------------------- outcomes in this kernel
OUTCOMES: dict[str, str] = {}
"""The last outcome of each check run in this kernel, by exercise name: ``"passed"``,
``"not attempted"``, ``"partial"`` (a named slip) or ``"failed"``."""


def passed(name: str) -> bool:
    """Whether ``check_<name>`` passed the last time it ran in this kernel."""
    if name not in REGISTRY or not isinstance(REGISTRY[name], Exercise):
        raise KeyError(f"no checked exercise {name!r}; the course has {[ex.name for ex in exercises()]}")
    return OUTCOMES.get(name) == "passed"


def student_or_reference(fn: Callable, name: str) -> Callable:
    """``fn`` when ``check_<name>`` passed in this kernel, else the exercise's reference (the
    library's implementation); prints one line saying which it uses."""
    if passed(name):
        print(f"Using your {name} (its check passed).")
        return fn
    print(f"Using the library's {name}: check_{name} has not passed in this kernel.")
    return REGISTRY[name].reference


def _partial_credit(ex: Exercise, mistake: Mistake, error: AssertionError):
    """Under grading, a named slip earns ``mistake.credit`` of the points: the diagnosis goes to
    stdout and the score is the cell's result (nbgrader's partial credit: a test cell whose
    output is a number gets that score). Returns the score for a caller outside IPython."""
    score = round(ex.points * mistake.credit, 2)
    if score <= 0:
        raise error
    OUTCOMES[ex.name] = "partial"
    print(f"◐ partial credit, {score:g} of {ex.points} points: {error}")
    try:
        from IPython import get_ipython
    except ImportError:
        return score
    if get_ipython() is None:
        return score
    sys.displayhook(score)  # IPython's displayhook: an execute_result, wherever the call sits in the cell
    return None


# --------------------------------------------------------------------------- the run
def run(ex: Exercise, fn: Callable):
    """Check ``fn`` on every case of the exercise: print success / not attempted, or raise.

    Under grading (:func:`grading`) a known mistake that explains every failing case earns
    partial credit instead of raising (see :func:`_partial_credit`)."""
    __tracebackhide__ = True  # IPython and pytest show the student's cell, not this machinery
    OUTCOMES[ex.name] = "failed"
    if ex.precheck is not None:
        ex.precheck(ex, fn)
    cases = ex.cases()
    results = []
    for case in cases:
        called = call(ex, fn, case)
        if called is None:
            OUTCOMES[ex.name] = "not attempted"
            if grading():
                raise AssertionError(
                    f"{ex.name}: not attempted: it still raises NotImplementedError. Replace "
                    "`raise NotImplementedError` with your solution before you submit."
                )
            print(
                f"○ {ex.name}: not attempted yet (it still raises NotImplementedError). Replace "
                "`raise NotImplementedError` with your solution and run this cell again."
            )
            return None
        got, args = called
        expected = ex.reference(*case.build())
        problem = _type_problem(ex, got) or _shape_problem(ex, got, expected)
        if problem:
            raise fail(ex, case, problem)
        results.append((case, got, args, expected))
    failing = [(case, got) for case, got, _, expected in results if not close(got, expected)]
    if failing:
        case, got = failing[0]
        expected = next(e for c, _, _, e in results if c is case)
        mistake = _named_mistake(ex, failing)
        problem = mistake.message if mistake else _diagnose_values(ex, fn, failing)
        error = fail(ex, case, problem, got, expected)
        if mistake is not None and grading():
            return _partial_credit(ex, mistake, error)
        raise error
    if ex.is_loss:
        for case, got, args, _ in results:
            problem = _gradient_problem(ex, got, args, case)
            if problem:
                raise fail(ex, case, problem)
    OUTCOMES[ex.name] = "passed"
    print(f"✓ {ex.name} matches the reference on {len(cases)} test cases")
    _flag_copy(ex, fn)
    return None

"""``benchmarks/run.py``'s sections: each has its intro in ``benchmarks/intros/<key>.md`` and a
benchmark module that exists; the intros hold no dates (git keeps the history)."""

import importlib.util
import re

from benchmarks import run

SECTIONS = list(run.sections(repeats=1))


def test_every_section_has_one_intro_and_every_intro_a_section():
    keys = [key for key, _, _ in SECTIONS]
    titles = [title for _, title, _ in SECTIONS]
    assert len(set(keys)) == len(keys) and len(set(titles)) == len(titles)
    assert sorted(path.stem for path in run.INTROS.glob("*.md")) == sorted(keys)
    for key in keys:
        assert run.intro(key), f"benchmarks/intros/{key}.md is empty"


def test_intros_hold_no_dates_or_history():
    for key, _, _ in SECTIONS:
        text = run.intro(key)
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\b(?:before|since|until|on) 20\d\d", text, re.I), (key, text)


def test_every_section_names_a_benchmark_module_that_exists():
    for key, _, table in SECTIONS:
        module = getattr(table, "module", None)
        if module is not None:
            assert importlib.util.find_spec(module) is not None, f"section {key!r}: no module {module}"

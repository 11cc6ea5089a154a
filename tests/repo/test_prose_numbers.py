"""Every measured number a lesson's prose quotes is printed by a cell of the same lesson.

The rule (``DESIGN.md``: "every number in the prose is printed"), applied to the markdown cells
of each lesson's jupytext source ``notebooks/NN_name.py``, against the text outputs (streams and
``text/plain``) of its committed, executed ``notebooks/NN_name.ipynb``:

* **Which numbers.** Those with two or more significant figures: ``0.18``, ``35.2``, ``35``,
  ``301``, ``1,357``, ``17,000``. ``0.1``, ``5``, ``40``, ``100`` and ``4,000`` have one and are
  not looked at: a round number is a setting or an order of magnitude, not a measurement. Not
  read either: LaTeX maths (``$...$``, ``$$...$$``), code spans and blocks, HTML tags and
  comments, link targets, headings, numbers glued to a word (``float32``, ``L2``, ``H200``),
  references to lessons, sections, cells and exercises (``lesson 06``, ``lessons 02–05``,
  ``§4``), and years (1900–2099).
* **What lets a number pass**, any of:

  1. *printed*: a number in the lesson's text outputs rounds to it at its last significant
     digit (a prose ``0.18`` matches a printed ``0.1812``, ``35`` matches ``35.2``, ``17,000``
     matches ``16,736``; signs are ignored; ``39 %`` also matches a printed fraction ``0.39``);
  2. *a parameter the lesson's code sets*: the same value is a numeric literal in one of the
     lesson's code cells (``15`` levels, ``n_steps=300``; ``98 %`` matches ``0.98``);
  3. *published*: its sentence cites the source with an author and a year, "(Song et al.
     2021)", "as tabulated by Grathwohl et al. 2019", or is followed by an explicit
     ``<!-- published: SOURCE -->`` comment. The project's own benchmarks are not a
     publication: they are re-measured, so a lesson points at ``benchmarks/RESULTS.md``
     without copying its numbers;
  4. one of the few ``FACTS`` below: a definition, not a measurement (an MNIST image has
     28 × 28 = 784 pixels, grey levels 0…255; one standard deviation holds 68 % of a normal).

A lesson fails with each number and its sentence, so that re-executing a lesson cannot leave a
stale number in its prose. Fix the sentence: print the number, point at the printed table
("the table above"), or leave the number out. The match is by value, not by cell, so a number
can pass by coinciding with an unrelated printed one: the test catches stale and unprinted
numbers, it does not prove that each sentence reads the right cell.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))

# a number, not glued to a word or to another number: 0.18, 35, 1,357, 3e-5, 1.2e+06
NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-−+]?\d+)?(?![\w]|[.,]\d)")
# what is removed from the markdown before numbers are read off it
HIDDEN = [
    re.compile(r"```.*?```", re.S),  # code blocks
    re.compile(r"\$\$.*?\$\$", re.S),  # display maths
    re.compile(r"(?<!\\)\$.+?(?<!\\)\$", re.S),  # inline maths
    re.compile(r"`[^`]*`"),  # code spans
    re.compile(r"<!--.*?-->", re.S),  # HTML comments (a published marker is read before)
    re.compile(r"<[^>]*>"),  # HTML tags
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),  # bare links
]
# references to parts of the course, not measurements: "lesson 06", "lessons 02–05", "§4.2"
REFERENCE = re.compile(
    r"(?:\b(?:[Ll]essons?|[Ss]ections?|[Cc]ells?|[Ee]xercises?|[Pp]arts?)\s+|§\s*)"
    r"\d+(?:\.\d+)*(?:\s*(?:[–-]|,|and|or|to)\s*\d+(?:\.\d+)*)*"
)
YEAR = re.compile(r"(?:19|20)\d\d")
# a citation with a year: "(Song et al. 2021)", "Song & Ermon (2019)", "Vincent 2011"
NAME = r"[A-Z][a-zà-ÿ'-]+"  # Song, Hyvärinen, Jolicoeur-Martineau; not NCSNv2
CITATION = re.compile(rf"\b{NAME}(?: et al\.|(?:,? {NAME})*,? (?:&|and) {NAME})? \(?(?:19|20)\d\d[a-z]?\b")
#: definitions, not measurements
FACTS = {
    28: "the side of an MNIST image",
    784: "28 × 28, MNIST's dimension",
    255: "the top grey level of an 8-bit image",
    68: "the % of a normal distribution within one standard deviation",
}
PUBLISHED = re.compile(r"<!--\s*published:\s*\S.*?-->", re.S)
# a sentence ends at . ! ? , at a blank line or where a list item starts; "et al." and "e.g." do not end one
SENTENCE_END = re.compile(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)[.!?](?=\s+[^a-z\s])|\n\s*\n|\n(?=\s*(?:\d+\.|[-*])\s)")


def significant_figures(token: str) -> int:
    mantissa = re.split(r"[eE]", token)[0].replace(",", "")
    if "." in mantissa:
        return len(mantissa.replace(".", "").lstrip("0"))
    return len(mantissa.lstrip("0").rstrip("0"))


def value(token: str) -> float:
    return abs(float(token.replace(",", "").replace("−", "-")))


def decimals(token: str) -> int:
    mantissa = re.split(r"[eE]", token)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def sentences(markdown: str) -> list[str]:
    """The markdown cut into sentences, with what a reader does not read as prose blanked out.

    A sentence keeps its ``<!-- published: ... -->`` marker as the word PUBLISHED."""
    text = PUBLISHED.sub(" PUBLISHED ", markdown)
    for pattern in HIDDEN:
        text = pattern.sub(lambda m: " " * len(m.group()) if "\n" not in m.group() else "\n", text)
    text = re.sub(r"^#+\s.*$", "", text, flags=re.M)  # headings: titles and section numbers
    found = []
    for sentence in (s.strip() for s in SENTENCE_END.split(text) if s and s.strip()):
        if sentence.startswith("PUBLISHED") and found:  # a marker belongs to the sentence before it
            found[-1] += " PUBLISHED"
            sentence = sentence[len("PUBLISHED"):].strip()
        if sentence:
            found.append(sentence)
    return found


def quoted_numbers(sentence: str) -> list[tuple[str, bool]]:
    """(number, whether a % follows it) for the numbers of a sentence that the rule looks at."""
    text = REFERENCE.sub(" ", sentence)
    return [
        (m.group(), text[m.end():].lstrip().startswith("%"))
        for m in NUMBER.finditer(text)
        if significant_figures(m.group()) >= 2 and not ("." not in m.group() and YEAR.fullmatch(m.group()))
    ]


def is_published(sentence: str) -> bool:
    return "PUBLISHED" in sentence or bool(CITATION.search(sentence))


def printed_numbers(ipynb: Path) -> list[float]:
    """Every number in the text outputs of an executed notebook."""
    nb = nbformat.read(ipynb, as_version=4)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "text/plain" in output.get("data", {}):
                texts.append(output["data"]["text/plain"])
    numbers = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
    return [value(token) for token in numbers.findall("\n".join(texts).replace("−", "-"))]


def code_numbers(nb) -> set[float]:
    """Every numeric literal in the lesson's code cells (the parameters it sets)."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                      if t.type == tokenize.NUMBER]
        except (tokenize.TokenError, SyntaxError, IndentationError):
            tokens = re.findall(r"\b\d[\d_]*(?:\.\d+)?(?:[eE][-+]?\d+)?", source)
        for token in tokens:
            try:
                found.add(round(abs(float(token.replace("_", ""))), 12))
            except ValueError:  # hexadecimal, complex
                pass
    return found


def is_printed(token: str, printed: list[float] | set[float], percent: bool = False) -> bool:
    """Whether some printed number rounds to ``token`` (a percentage also as a fraction)."""
    if percent and is_printed(str(round(value(token) / 100, decimals(token) + 2)), printed):
        return True
    target, places = value(token), decimals(token)
    if "." not in token and "e" not in token.lower():  # "about 17,000" is 16,736 rounded: places -3
        places = -(len(token.replace(",", "")) - len(token.replace(",", "").rstrip("0")))
    tolerance = 0.5 * 10.0 ** -places * (1 + 1e-9)
    if "e" in token.lower():  # 3e-5: the printed number rounds to it at the mantissa's precision
        tolerance = 0.5 * 10.0 ** (-places + int(re.split(r"[eE]", token)[1].replace("−", "-")))
    return any(abs(number - target) <= tolerance for number in printed)


def unprinted_numbers(source: Path) -> list[tuple[str, str]]:
    """(number, sentence) for every quoted number of a lesson that the rule does not let pass."""
    nb = jupytext.read(source)
    printed = printed_numbers(source.with_suffix(".ipynb"))
    parameters = code_numbers(nb)
    failures = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for sentence in sentences(cell.source):
            if is_published(sentence):
                continue
            for token, percent in quoted_numbers(sentence):
                as_set = {value(token), round(value(token) / 100, 12)} if percent else {value(token)}
                if value(token) in FACTS or as_set & parameters or is_printed(token, printed, percent):
                    continue
                failures.append((token, " ".join(sentence.split())))
    return failures


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_number_in_the_prose_is_printed(source):
    failures = unprinted_numbers(source)
    assert not failures, (
        f"{source.name} quotes {len(failures)} number(s) that no cell prints, that its code does not set "
        "and that no citation marks as published (tests/repo/test_prose_numbers.py says the rule):\n"
        + "\n".join(f"  {token!r} in: {sentence[:300]}" for token, sentence in failures)
    )


def test_the_rule_reads_numbers_as_documented():
    assert [significant_figures(t) for t in ("0.18", "35", "0.1", "100", "4,000", "1,357", "3e-5", "120")] == [
        2, 2, 1, 1, 1, 4, 1, 2]
    text = "At σ = 0.3 the error is 2.97 (lesson 06, §4.2, in 2021); `0.123` and $0.456$ are hidden, float32 too."
    assert [n for s in sentences(text) for n, _ in quoted_numbers(s)] == ["2.97"]
    assert is_printed("0.18", [0.1812]) and is_printed("35", [35.2]) and not is_printed("0.18", [0.19])
    assert is_printed("17,000", [16736.0]) and not is_printed("4.321", [4.32])
    assert is_printed("39", [0.39], percent=True) and not is_printed("39", [0.39])
    assert is_published("DSM reached 2.20 FID (Song et al. 2021).")
    marked = sentences("It reached 3.17. <!-- published: Ho et al., DDPM, table 1 --> Ours reached 3.25.")
    assert [is_published(s) for s in marked] == [True, False]
    assert not is_published("It reached 3.17 in this run, with NCSNv2's 2020 settings.")


def lesson_copy(tmp_path: Path, sentence: str) -> Path:
    """Lesson 01 (source and executed notebook) in ``tmp_path``, with ``sentence`` added to its markdown."""
    source = SOURCES[0]
    text = source.read_text(encoding="utf-8")
    anchor = "\n# %% [markdown]\n"
    assert anchor in text
    copy = tmp_path / source.name
    copy.write_text(text.replace(anchor, f"{anchor}# {sentence}\n#\n", 1), encoding="utf-8")
    copy.with_suffix(".ipynb").write_bytes(source.with_suffix(".ipynb").read_bytes())
    return copy


def test_an_unprinted_number_fails_and_a_cited_one_passes(tmp_path):
    assert [n for n, _ in unprinted_numbers(lesson_copy(tmp_path, "The error here is 4.321 in this run."))] == [
        "4.321"]
    assert unprinted_numbers(lesson_copy(tmp_path, "Their error was 4.321 (Song et al. 2021).")) == []
    assert unprinted_numbers(lesson_copy(tmp_path, "Their error was 4.321. <!-- published: a paper, table 2 -->")) == []

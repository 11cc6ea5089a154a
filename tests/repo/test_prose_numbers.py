"""Every measured number a lesson's prose quotes is printed by a cell of the same lesson.

The rule (``../DESIGN.md``, "Every number in the prose is printed"), applied to each lesson's
markdown cells as its jupytext source ``notebooks/NN_name.py`` holds them, against the text
outputs (streams and ``text/plain``) of its committed, executed ``notebooks/NN_name.ipynb``:

* **Which numbers.** A number in the markdown with two or more significant figures: ``0.18``,
  ``35.2``, ``2.97``, ``35``, ``301``, ``1,357`` (``0.1``, ``5``, ``40``, ``100`` and
  ``4,000`` have one: a round number is a setting, not a measurement). Not looked at: LaTeX
  maths (``$...$``, ``$$...$$``), code spans and blocks, HTML tags and link targets, numbers
  glued to a word (``float32``, ``L2``, ``H200``), references to lessons, sections, cells and
  exercises (``lesson 06``, ``lessons 02–05``, ``§4``), and years (1900–2099).
* **What makes one pass**, any of:

  1. it is *printed*: some number in the lesson's text outputs rounds to it at the prose's
     precision (a prose ``0.18`` matches a printed ``0.1812``, a prose ``35`` a printed
     ``35.2``; ``1,000`` is ``1000``; signs are ignored);
  2. it is a *parameter the lesson's code sets*: the same value is a numeric literal in one of
     the lesson's code cells (``15`` levels, ``n_steps=301``, ``3e-5``);
  3. it is a *published figure*: the sentence that quotes it cites its source with a year,
     "(Song et al. 2021)", "Vincent (2011) reports", or carries an explicit
     ``<!-- published: SOURCE -->`` comment.

A lesson that quotes a number no cell prints fails, with the number and its sentence, so that
re-executing a lesson cannot leave a stale number behind. Fix it by printing the number, by
pointing at the printed table ("the table above"), or by leaving the number out.
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
CITATION = re.compile(r"[A-Z][\w'-]+(?: et al\.| (?:&|and) [A-Z][\w'-]+)?,? \(?(?:19|20)\d\d[a-z]?\b")
PUBLISHED = re.compile(r"<!--\s*published:\s*\S.*?-->", re.S)
# a sentence ends at . ! ? or a blank line; "et al." and "e.g." do not end one
SENTENCE_END = re.compile(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)[.!?](?=\s+[^a-z\s])|\n\s*\n")


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
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


def quoted_numbers(sentence: str) -> list[str]:
    """The numbers of a sentence that the rule looks at (two or more significant figures)."""
    text = REFERENCE.sub(" ", sentence)
    return [
        token
        for token in NUMBER.findall(text)
        if significant_figures(token) >= 2 and not ("." not in token and YEAR.fullmatch(token))
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
                found.add(abs(float(token.replace("_", ""))))
            except ValueError:  # hexadecimal, complex
                pass
    return found


def is_printed(token: str, printed: list[float]) -> bool:
    target, places = value(token), decimals(token)
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
            for token in quoted_numbers(sentence):
                if value(token) in parameters or is_printed(token, printed):
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
    assert [n for s in sentences(text) for n in quoted_numbers(s)] == ["2.97"]
    assert is_printed("0.18", [0.1812]) and is_printed("35", [35.2]) and not is_printed("0.18", [0.19])
    assert is_printed("1,000", [1000.0]) and not is_printed("4.321", [4.32])
    assert is_published("DSM reached 2.20 FID (Song et al. 2021).")
    assert is_published("It reached 3.17. <!-- published: Ho et al., DDPM, table 1 -->".replace(
        "<!-- published: Ho et al., DDPM, table 1 -->", " PUBLISHED "))
    assert not is_published("It reached 3.17 in this run.")

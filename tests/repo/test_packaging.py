"""environment.yml (conda-forge, Binder) lists the same packages as pyproject.toml's
dependencies plus its course, dev and book extras, with the same lower bounds."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[2]
# PyPI name -> conda-forge name, where they differ.
CONDA_NAME = {"torch": "pytorch"}
EXTRAS = ("course", "dev", "book")
_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:(>=|==|=)\s*([^\s,;]+))?")


def _parse(requirement: str) -> tuple[str, str | None]:
    """('name', lower bound or None) from 'name>=1.2' (pip) or 'name>=1.2' / 'name=1.2' (conda)."""
    match = _SPEC.match(requirement)
    assert match, f"cannot read the requirement {requirement!r}"
    name, op, version = match.groups()
    return name.lower().replace("_", "-"), version if op == ">=" else None


def _pyproject() -> dict[str, str | None]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in EXTRAS:
        requirements += project["optional-dependencies"][extra]
    parsed = dict(_parse(r) for r in requirements)
    return {CONDA_NAME.get(name, name): bound for name, bound in parsed.items()}


def _environment() -> tuple[dict, dict[str, str | None], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            name, bound = _parse(dep)
            conda[name] = bound
    return env, conda, pip


def test_environment_is_conda_forge_and_binder_ready():
    env, conda, pip = _environment()
    assert env["name"] == "score-matching"
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    assert "pip" in conda and "-e ." in pip, "the package itself is installed with pip: `- pip: [-e .]`"


def test_environment_lists_the_same_packages_as_pyproject():
    _, conda, pip = _environment()
    conda_packages = {name for name in conda if name not in ("python", "pip")}
    pip_packages = {_parse(r)[0] for r in pip if r != "-e ."}
    listed = conda_packages | {CONDA_NAME.get(name, name) for name in pip_packages}
    expected = set(_pyproject())
    assert listed == expected, (
        f"environment.yml and pyproject.toml disagree: only in environment.yml {sorted(listed - expected)}, "
        f"only in pyproject.toml {sorted(expected - listed)} (conda calls torch 'pytorch')"
    )


def test_environment_lower_bounds_match_pyproject():
    _, conda, _ = _environment()
    for name, bound in _pyproject().items():
        if name in conda:
            assert conda[name] == bound, f"{name}: pyproject.toml says >={bound}, environment.yml says {conda[name]}"

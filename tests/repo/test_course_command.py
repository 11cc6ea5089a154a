"""`make course`: JupyterLab opens on the course folder at lesson 01, with JupyterLab's
"official Jupyter news?" prompt switched off for this environment by `make setup` (a settings
override in the environment, not in the user's home)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.browser import get_json, jupyterlab_server

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tools" / "jupyterlab_overrides.json"
INSTALLED = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_overrides_match_jupyterlabs_own_schema():
    overrides = json.loads(SOURCE.read_text())
    schemas = Path(sys.prefix) / "share/jupyter/lab/schemas"
    schema = json.loads((schemas / "@jupyterlab/apputils-extension/notification.json").read_text())
    props = schema["properties"]
    assert set(overrides[NOTIFICATION]) <= set(props)
    assert overrides[NOTIFICATION]["fetchNews"] in [option["const"] for option in props["fetchNews"]["oneOf"]]
    assert overrides[NOTIFICATION]["fetchNews"] == "false" and overrides[NOTIFICATION]["checkForUpdates"] is False


def test_setup_installed_the_overrides_into_this_environment():
    assert INSTALLED.is_file(), f"{INSTALLED} is missing: run `make setup`"
    assert json.loads(INSTALLED.read_text()) == json.loads(SOURCE.read_text())


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_course_opens_lesson_01_in_the_notebooks_folder():
    recipe = subprocess.run(["make", "-n", "-W", "pyproject.toml", "course"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    lab = [line for line in recipe.splitlines() if "jupyter lab" in line]
    assert lab == [".venv/bin/jupyter lab --ServerApp.root_dir=notebooks notebooks/01_score_function.ipynb"]


@pytest.mark.slow
def test_jupyterlab_serves_the_course_without_the_news_prompt(tmp_path):
    with jupyterlab_server(tmp_path, ROOT / "notebooks") as (url, token):
        setting = get_json(f"{url}/lab/api/settings/{NOTIFICATION}", token)
        defaults = {k: v["default"] for k, v in setting["schema"]["properties"].items()}
        # JupyterLab asks "Would you like to get notified about official Jupyter news?" only
        # while fetchNews is "none" (its default); the user's own settings are empty here
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False
        assert setting["settings"] == {}
        names = {item["name"] for item in get_json(f"{url}/api/contents", token)["content"]}
        assert "01_score_function.ipynb" in names

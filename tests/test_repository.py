"""The repository keeps its promises: the README's commands and CI agree, the layout holds."""

from __future__ import annotations

import re

import tomllib

from conftest import ROOT


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks if b.strip().startswith("python3 -m venv")]


def test_readme_has_a_study_and_a_test_command():
    commands = readme_commands()
    assert any("medai-course study" in c for c in commands), commands
    assert any("pytest" in c and ".[dev]" in c for c in commands), commands


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = next(c for c in readme_commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines(), "the README's test command and .ci/run differ"
    assert "set -euo pipefail" in ci


def test_layout_and_metadata():
    for name in ("pyproject.toml", "environment.yml", "README.md", "medai_lessons", "course",
                 "tests", ".ci/run"):
        assert (ROOT / name).exists(), name
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["name"] == "medai-lessons" and meta["requires-python"] == ">=3.10"
    deps = " ".join(meta["dependencies"])
    for dep in ("tensorflow", "keras", "numpy", "pandas", "matplotlib", "scikit-learn",
                "jupyterlab", "nbgrader", "nbval"):
        assert dep in deps, dep
    assert "tensorflow[and-cuda]" in " ".join(meta["optional-dependencies"]["gpu"])
    assert "-e .[dev]" in (ROOT / "environment.yml").read_text()

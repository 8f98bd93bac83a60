"""The repository keeps its promises: the README's commands and CI agree, the layout holds."""

from __future__ import annotations

import re
import sys

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10, the oldest the course supports: the same parser, from PyPI
    import tomli as tomllib


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
                "jupyterlab", "nbgrader"):
        assert dep in deps, dep
    assert "nbval" in " ".join(meta["optional-dependencies"]["dev"])


def _declared(requirements: list[str]) -> set[str]:
    names = (re.match(r"[A-Za-z0-9_.-]+", r.strip()).group(0) for r in requirements)
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names}


def _packages_distributions() -> dict[str, list[str]]:
    """importlib.metadata.packages_distributions(). Python 3.10's reads only each
    distribution's top_level.txt, which wheels built without setuptools (scikit-learn,
    scikit-image) lack; from 3.11 on it infers the names from the files, as done here."""
    import inspect
    from importlib.metadata import distributions, packages_distributions

    if sys.version_info >= (3, 11):
        return packages_distributions()
    found: dict[str, list[str]] = {}
    for dist in distributions():
        tops = set((dist.read_text("top_level.txt") or "").split())
        if not tops:
            tops = {f.parts[0] if len(f.parts) > 1 else inspect.getmodulename(str(f))
                    for f in dist.files or ()} - {None}
        for top in tops:
            found.setdefault(top, []).append(dist.metadata["Name"])
    return found


def test_every_package_the_course_imports_is_declared():
    """A package imported by medai_lessons (at the top or inside a function) is one of the
    project's dependencies, not something another dependency happens to bring along."""
    import ast

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _declared(meta["dependencies"])
    # an optional feature's packages (the cluster extra) count, when the code that imports
    # them says what to install without them; the test tools (dev) do not
    for extra, packages in meta["optional-dependencies"].items():
        if extra != "dev":
            declared |= _declared(packages)
    dist_of = _packages_distributions()
    missing = {}
    for path in sorted((ROOT / "medai_lessons").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top == "medai_lessons":
                    continue
                dists = _declared(dist_of.get(top, [top]))
                if not dists & declared:
                    missing.setdefault(top, path.relative_to(ROOT).as_posix())
    assert not missing, f"imported but not declared in pyproject.toml's dependencies: {missing}"
    assert "tensorflow[and-cuda]" in " ".join(meta["optional-dependencies"]["gpu"])
    assert "-e .[dev]" in (ROOT / "environment.yml").read_text()

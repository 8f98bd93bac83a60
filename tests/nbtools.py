"""Notebook helpers the grading tests share: which cells are answers and tests, which answers
a test needs, an answer as a learner would write it, a cell run as a learner's notebook runs
it, and the first line a checker's failure message starts with."""

from __future__ import annotations

import copy
import re
import textwrap

import nbformat


def nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def answer_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and nbg(c).get("solution")]


def grade_cells(nb):
    """Autograded test cells."""
    return [c for c in nb.cells if c.cell_type == "code" and nbg(c).get("grade")
            and not nbg(c).get("solution")]


def cell(nb, grade_id):
    return next(c for c in nb.cells if nbg(c).get("grade_id") == grade_id)


def requirements(nb) -> dict[str, set[str]]:
    """grade_id of each test cell -> grade_ids of the answer cells it needs: the nearest answer
    cell above it, unless its metadata ``medai.requires`` lists them."""
    needs, last_answer = {}, None
    for c in nb.cells:
        meta = nbg(c)
        if c.cell_type == "code" and meta.get("solution"):
            last_answer = meta["grade_id"]
        elif c.cell_type == "code" and meta.get("grade"):
            declared = c.metadata.get("medai", {}).get("requires")
            needs[meta["grade_id"]] = set(declared) if declared else {last_answer}
    return needs


def as_learner_would_write(source: str) -> str:
    """A solution cell without nbgrader's delimiters, as a learner's answer looks."""
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def function_bodies(source: str) -> dict[str, str]:
    """Each function in ``source`` (signature, decorators and body) as an AST dump, without its
    docstring: equal for two sources that differ only in layout, comments and docstrings."""
    import ast

    bodies = {}
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.FunctionDef):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            bodies[node.name] = "\n".join(
                [ast.dump(node.args), *map(ast.dump, node.decorator_list),
                 ast.dump(ast.Module(body=body, type_ignores=[]))])
    return bodies


def assert_notebook_holds(nb, answers: str, names) -> None:
    """The functions ``names`` in ``answers`` (a test file's model answers) are the ones in the
    notebook's solution cells, so that the test file tests what the autograder sees."""
    found = {}
    for c in answer_cells(nb):
        found.update(function_bodies(as_learner_would_write(c.source)))
    expected = function_bodies(answers)
    drifted = [name for name in names if found.get(name) != expected[name]]
    assert not drifted, f"the notebook's solutions differ from the test's answers: {drifted}"


def answered(release_nb, source_nb, answer_ids=None):
    """The release with the given answer cells (default: all) filled in from the source."""
    solutions = {nbg(c)["grade_id"]: c.source for c in answer_cells(source_nb)}
    nb = copy.deepcopy(release_nb)
    for c in nb.cells:
        gid = nbg(c).get("grade_id")
        if gid in solutions and (answer_ids is None or gid in answer_ids):
            c.source = as_learner_would_write(solutions[gid])
    return nb


def expected_scores(source_nb, broken: set[str]) -> dict[str, float]:
    """Points of each test cell when the answers in ``broken`` are wrong or missing."""
    needs = requirements(source_nb)
    return {nbg(c)["grade_id"]: (0.0 if needs[nbg(c)["grade_id"]] & broken
                                 else float(nbg(c)["points"]))
            for c in grade_cells(source_nb)}


def read(path):
    return nbformat.read(path, as_version=4)


def failure_pattern(exercise: str, case: str) -> str:
    """The first line of a checker's message: the exercise, then the case that failed (either
    ``failed on case '<case>...`` or ``raised <Error> on case '<case>...``)."""
    return rf"^{re.escape(exercise)}: (failed on|raised \w+ on) case '{re.escape(case)}"


def notebook(source: str) -> dict:
    """Run ``source`` in a fresh namespace, as a learner's notebook cell would."""
    namespace: dict = {"__name__": "__main__"}
    exec(textwrap.dedent(source), namespace)
    return namespace


def _python(source: str) -> str:
    """A cell's source without IPython's magics and shell lines (they are not Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def bound_and_free_names(source: str) -> tuple[set[str], set[str]]:
    """Names a code cell binds (assignments, imports, definitions, loop and ``with`` targets,
    anywhere in the cell) and names it reads without binding them in the cell: what it takes
    from the notebook's earlier cells. Deliberately generous on both sides."""
    import ast

    bound, read = set(), set()
    for node in ast.walk(ast.parse(_python(source))):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound, read - bound


def changed_in_place(source: str) -> set[str]:
    """Names whose object a code cell may change without rebinding them: the receiver of a
    method call (``model.fit(...)``, ``rows.append(...)``) and the target of an attribute or
    item assignment or deletion (``model.trainable = False``, ``table[key] = value``).
    Deliberately generous: most method calls change nothing."""
    import ast

    changed = set()
    for node in ast.walk(ast.parse(_python(source))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)):
            changed.add(node.func.value.id)
        elif (isinstance(node, (ast.Attribute, ast.Subscript))
              and isinstance(node.ctx, (ast.Store, ast.Del)) and isinstance(node.value, ast.Name)):
            changed.add(node.value.id)
    return changed


def imported_names(source: str) -> set[str]:
    import ast

    return {(a.asname or a.name).split(".")[0] for node in ast.walk(ast.parse(_python(source)))
            if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}


def names_from_left_out_cells(nb, tag: str) -> dict[int, set[str]]:
    """For each cell that runs while autograding (index -> names): the names it reads whose
    last change before it was made by cells tagged ``tag`` (left out while autograding), by
    binding them, rebinding them or changing their object in place (see
    :func:`changed_in_place`; modules are not counted as changed). Empty when leaving those
    cells out cannot change what the cells that run see, as far as names show it: an object
    changed through a function it is passed to (``train(model)``) is not seen."""
    last_changed_left_out, modules, problems = set(), set(), {}
    for index, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        bound, free = bound_and_free_names(c.source)
        if tag in c.get("metadata", {}).get("tags", []):
            last_changed_left_out |= bound | (changed_in_place(c.source) - modules)
            continue
        if free & last_changed_left_out:
            problems[index] = free & last_changed_left_out
        last_changed_left_out -= bound
        modules |= imported_names(c.source)
    return problems


#: code for an answer cell that undoes the grading kernel's own cut of its messages
#: (``guard.cap_messages``), as an attacker would, so that a flood after it tests the grader's
#: own limits: the original ``Session.send`` is in the wrapper's closure
UNCAP = """
import jupyter_client.session as _session
_original = [c.cell_contents for c in _session.Session.send.__closure__ or ()
             if callable(c.cell_contents)]
if _original:
    _session.Session.send = _original[0]
"""

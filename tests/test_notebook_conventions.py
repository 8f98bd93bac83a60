"""The course's notebook conventions, checked on every chapter's source notebook.

Fast checks, no kernel: committed without outputs; the standard python3 kernel; nbgrader
metadata schema 3 with unique grade_ids; test cells that import their checkers in the same
cell; a written answer in every chapter; "From the source document" boxes that name their
erratum, every erratum of docs/errata.md (which holds ../shared/ERRATA.md) shown in one of its
chapters; prose that speaks to the learner, not about the team's machines and studies.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from conftest import ROOT, SHARED_DATA, SOURCE, chapter_dirs

CHAPTERS = chapter_dirs()
ERRATA = SHARED_DATA.parent / "ERRATA.md"
OWN_ERRATA = ROOT / "docs" / "errata.md"


def load(chapter):
    return nbformat.read(chapter / f"{chapter.name}.ipynb", as_version=4)


def nbg(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


@pytest.fixture(params=CHAPTERS, ids=lambda d: d.name)
def chapter(request):
    return request.param


def test_there_are_chapters():
    assert CHAPTERS, f"no chapter notebooks found in {SOURCE}"


def test_valid_and_committed_without_outputs(chapter):
    nb = load(chapter)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{chapter.name}: cells {dirty} have outputs; clear them before committing"


def test_standard_kernel(chapter):
    assert load(chapter).metadata["kernelspec"]["name"] == "python3"


def test_nbgrader_metadata(chapter):
    nb = load(chapter)
    ids = [nbg(c)["grade_id"] for c in nb.cells if nbg(c)]
    assert len(ids) == len(set(ids)), f"duplicate grade_ids in {chapter.name}"
    for c in nb.cells:
        meta = nbg(c)
        if not meta:
            continue
        assert meta.get("schema_version") == 3, meta
        assert re.fullmatch(r"[a-z][a-z0-9_]+", meta["grade_id"]), meta["grade_id"]
        if meta.get("grade") and not meta.get("solution"):
            assert meta.get("locked") and meta.get("points", 0) > 0, meta


def test_test_cells_import_their_checkers_in_the_same_cell(chapter):
    for c in load(chapter).cells:
        meta = nbg(c)
        if c.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        visible, _, hidden = c.source.partition("### BEGIN HIDDEN TESTS")
        # Checkers called by bare name must be imported in the same cell ...
        called = set(re.findall(r"(?<![\w.])(check_\w+|assert_\w+)\(", c.source))
        assert re.search(r"\bcheck_\w+\(", visible), f"{meta['grade_id']}: no visible checker call"
        for name in called:
            assert re.search(rf"import[^\n]*\b{name}\b", c.source), (
                f"{meta['grade_id']} calls {name} without importing it in the same cell")
        # ... and hidden tests use a fresh copy of the checking code (grading/fresh.py).
        assert "importlib.reload(_fresh).grading()" in hidden, (
            f"{meta['grade_id']}: hidden tests must reload the checkers (see grading/fresh.py)")
        assert "_g.assert_own_implementation(" in hidden, (
            f"{meta['grade_id']}: hidden tests must check that the answer is the learner's own")
        assert "assert " not in re.sub(r"assert_\w+", "", c.source), (
            f"{meta['grade_id']}: use a checker with a message, not a bare assert")


def test_test_cells_let_run_all_go_on(chapter):
    """An unanswered exercise's test cell raises NotImplementedError; JupyterLab's Run All
    stops at the first error unless the cell is tagged raises-exception."""
    for c in load(chapter).cells:
        meta = nbg(c)
        if c.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            assert "raises-exception" in c.metadata.get("tags", []), (
                f"{meta['grade_id']} is not tagged raises-exception")


def test_every_chapter_has_a_written_answer(chapter):
    written = [c for c in load(chapter).cells
               if c.cell_type == "markdown" and nbg(c).get("solution") and nbg(c).get("grade")]
    assert written, f"{chapter.name} has no manually graded written answer"


def test_setup_cell_first(chapter):
    first_code = next(c for c in load(chapter).cells if c.cell_type == "code")
    assert "setup(" in first_code.source, "the first code cell calls medai_lessons' setup()"


def test_source_boxes_name_their_erratum(chapter):
    for c in load(chapter).cells:
        if c.cell_type == "markdown" and "From the source document" in c.source:
            assert re.search(r"\bE\d+\b", c.source), (
                f"{chapter.name}: a 'From the source document' box names no erratum id:\n"
                f"{c.source[:200]}")


def _verbatim_files_with_solutions(folder) -> list:
    """Files other than notebooks (copied verbatim into a release) that hold solutions or
    hidden tests."""
    return [f for f in sorted(folder.rglob("*")) if f.is_file() and f.suffix != ".ipynb"
            and re.search(r"BEGIN (SOLUTION|HIDDEN TESTS)",
                          f.read_text(encoding="utf-8", errors="replace"))]


def test_no_solutions_in_files_copied_verbatim(chapter):
    leaks = _verbatim_files_with_solutions(chapter)
    assert not leaks, f"copied verbatim into the release, with solutions or hidden tests: {leaks}"


def test_the_verbatim_check_finds_a_planted_solution(tmp_path):
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "answers.py").write_text("### BEGIN SOLUTION\nx = 1\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "ch.ipynb").write_text("### BEGIN SOLUTION (notebooks are generated)")
    assert _verbatim_files_with_solutions(tmp_path) == [tmp_path / "helpers" / "answers.py"]


def _parse_errata(path) -> dict[str, set[str]]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*(E\d+)\s*\|.*\|\s*([\w/ ,]+)\s*\|\s*$", line)
        if m:
            table[m.group(1)] = {c.strip() for c in re.split(r"[/,]", m.group(2)) if c.strip()}
    assert table, f"no errata rows parsed from {path}"
    return table


def _errata_by_chapter() -> dict[str, set[str]]:
    """docs/errata.md: the shared list the course started from (E1-E20) and the course's own
    (from E21 on), numbered without gaps."""
    own = _parse_errata(OWN_ERRATA)
    numbers = sorted(int(e[1:]) for e in own)
    assert numbers == list(range(1, len(numbers) + 1)), f"errata ids with gaps: {numbers}"
    return own


def test_the_errata_list_holds_the_shared_list_unchanged():
    """Every row of ../shared/ERRATA.md is in docs/errata.md, word for word, so that the boxes
    can link to one list in the repository."""
    if not ERRATA.is_file():
        pytest.skip(f"{ERRATA} is not present on this machine")
    rows = {line.strip() for line in OWN_ERRATA.read_text(encoding="utf-8").splitlines()}
    shared = [line.strip() for line in ERRATA.read_text(encoding="utf-8").splitlines()
              if re.match(r"\|\s*E\d+\s*\|", line)]
    assert len(shared) >= 20, f"no errata rows parsed from {ERRATA}"
    missing = [line[:40] for line in shared if line not in rows]
    assert not missing, f"rows of {ERRATA} missing from or changed in docs/errata.md: {missing}"


def test_every_erratum_of_a_built_chapter_is_shown():
    shown: dict[str, set[str]] = {}
    for ch in CHAPTERS:
        for c in load(ch).cells:
            if c.cell_type == "markdown" and "From the source document" in c.source:
                for eid in re.findall(r"\bE\d+\b", c.source):
                    shown.setdefault(eid, set()).add(ch.name.split("_")[0])
    built = {ch.name.split("_")[0] for ch in CHAPTERS}
    missing = []
    for eid, chapters in _errata_by_chapter().items():
        if chapters & built and not (shown.get(eid, set()) & chapters):
            missing.append(f"{eid} (for {'/'.join(sorted(chapters))})")
    assert not missing, f"errata with no 'From the source document' box: {missing}"


def test_cells_left_out_of_autograding_are_applied_cells_nothing_graded_needs(chapter):
    """Cells tagged for autograding to leave out (medai_lessons/grading/execute.py) are plain
    code cells, and no cell that still runs reads a name that only they bind."""
    from medai_lessons.grading.execute import SKIP_TAG, is_graded_or_answer
    from nbtools import names_from_left_out_cells

    nb = load(chapter)
    tagged = [c for c in nb.cells if SKIP_TAG in c.get("metadata", {}).get("tags", [])]
    assert all(c.cell_type == "code" and not is_graded_or_answer(c) for c in tagged), (
        f"{chapter.name}: only plain code cells may be tagged {SKIP_TAG!r}")
    assert names_from_left_out_cells(nb, SKIP_TAG) == {}, (
        f"{chapter.name}: cells that run while autograding read names that only cells tagged "
        f"{SKIP_TAG!r} bind")


_TENSORFLOW = re.compile(r"\b(keras|tensorflow|tf)\.|\bimport (keras|tensorflow)\b|"
                         r"\bfrom (keras|tensorflow)\b")


def _runs_tensorflow_while_graded(nb) -> bool:
    from medai_lessons.grading.execute import SKIP_TAG

    return any(_TENSORFLOW.search(c.source) for c in nb.cells[2:]
               if c.cell_type == "code" and SKIP_TAG not in c.get("metadata", {}).get("tags", []))


def test_grading_kernels_skip_tensorflow_exactly_where_no_graded_cell_needs_it(chapter):
    """setup() leaves TensorFlow out of a grading kernel for the chapters listed in
    GRADED_WITHOUT_TENSORFLOW: none of their cells that run while autograding may use it, and a
    chapter whose setup loads it while no such cell needs it belongs in the list."""
    from medai_lessons.notebook import GRADED_WITHOUT_TENSORFLOW

    nb = load(chapter)
    needs = _runs_tensorflow_while_graded(nb)
    if chapter.name in GRADED_WITHOUT_TENSORFLOW:
        assert not needs, f"{chapter.name} uses TensorFlow in a cell that runs while graded"
    elif "tensorflow=False" not in nb.cells[1].source:
        assert needs, (f"{chapter.name}'s graded run needs no TensorFlow: add it to "
                       "medai_lessons.notebook.GRADED_WITHOUT_TENSORFLOW")


def test_the_tensorflow_check_sees_keras_in_a_graded_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
                                         nbformat.v4.new_code_cell("setup()"),
                                         nbformat.v4.new_code_cell("x = 1")])
    assert not _runs_tensorflow_while_graded(nb)
    for line in ("from keras import ops", "m = keras.Sequential()", "import tensorflow as tf",
                 "tf.constant(1)"):
        nb.cells[2].source = line
        assert _runs_tensorflow_while_graded(nb), line
    nb.cells[2].metadata["tags"] = ["not-autograded"]
    assert not _runs_tensorflow_while_graded(nb)


def test_the_dependency_check_sees_a_name_taken_from_a_left_out_cell():
    from nbformat.v4 import new_code_cell, new_notebook

    from nbtools import bound_and_free_names, names_from_left_out_cells

    assert bound_and_free_names("import numpy as np\nfor i in x:\n    y = f(i, np)") == (
        {"np", "i", "y"}, {"x", "f"})
    assert bound_and_free_names("%matplotlib inline\ndef g(a):\n    return a + b") == (
        {"g", "a"}, {"b"})
    left_out = new_code_cell("model = train()\nscores = model(x)")
    left_out.metadata["tags"] = ["skip-me"]
    nb = new_notebook(cells=[new_code_cell("x = 1"), left_out,
                             new_code_cell("def answer(scores):\n    return scores"),
                             new_code_cell("print(model)")])
    assert names_from_left_out_cells(nb, "skip-me") == {3: {"model"}}
    nb.cells.insert(3, new_code_cell("model = None"))
    assert names_from_left_out_cells(nb, "skip-me") == {}


def test_the_dependency_check_sees_a_name_rebound_or_changed_in_a_left_out_cell():
    from nbformat.v4 import new_code_cell, new_notebook

    from nbtools import changed_in_place, names_from_left_out_cells

    assert changed_in_place("model.fit(x)\nrows[0] = 1\ncfg.lr = 2\nf(data)\nnp.mean(y)") == {
        "model", "rows", "cfg", "np"}

    def notebook_with(left_out_source, *after):
        left_out = new_code_cell(left_out_source)
        left_out.metadata["tags"] = ["skip-me"]
        return new_notebook(cells=[
            new_code_cell("import numpy as np\nthreshold = 0.5\nmodel = build()"), left_out,
            *[new_code_cell(source) for source in after]])

    assert names_from_left_out_cells(
        notebook_with("threshold = choose()", "report(threshold)"), "skip-me") == {
        2: {"threshold"}}                                          # rebound
    assert names_from_left_out_cells(
        notebook_with("model.fit(x, y)", "x = 1", "model.predict(x)"), "skip-me") == {
        3: {"model"}}                                              # changed in place
    assert names_from_left_out_cells(
        notebook_with("model.fit(x, y)\nnp.mean(y)", "model = build()\nprint(np.pi, model)"),
        "skip-me") == {}                                           # rebound first; a module


# What belongs to the team's notes (docs/, benchmarks/README.md), not to a learner's notebook:
# the processors and machines the course was measured on, benchmark runs, study files.
_TEAM_NOTES = re.compile(
    r"\b(?:EPYC|Xeon|Ryzen|Core i\d|Intel|AMD|processors?|CPU models?)\b"
    r"|test machines?|course's benchmarks?|benchmark runs?|benchmarks/|studies/|results/\w+\.json"
    r"|\b[Ss]eed 00[03]\b|(?<![\w,.])00[03](?!\d)",
    re.IGNORECASE)


def _team_notes(text: str) -> list[str]:
    return [text[max(0, m.start() - 30):m.end() + 30].replace("\n", " ")
            for m in _TEAM_NOTES.finditer(text)]


def test_learner_prose_names_no_processor_study_file_or_test_machine(chapter):
    """Markdown and the code a learner reads (comments, strings): no processor, machine,
    benchmark run or study file, and the source documents by their names, not as 'seed 000'."""
    found = [(i, hit) for i, c in enumerate(load(chapter).cells) for hit in _team_notes(c.source)]
    assert not found, f"{chapter.name}: team notes in learner cells: {found}"


@pytest.mark.parametrize("text", [
    "101 s on a quiet 2-core AMD EPYC", "138 s on an Intel Xeon",
    "as on the course's test machines",
    "the study is `benchmarks/studies/ch06_ensemble.py`", "in the course's benchmarks",
    "Seed 000 §3.1", "two machines with different processors", "In 000's formula",
    "(003 §4.4 calls it 召回率)", "In 003, $s$ is"])
def test_the_team_notes_check_sees_them(text):
    assert _team_notes(text)


@pytest.mark.parametrize("text", [
    "fit_preprocessor(X_train)", "a preprocessor fitted on the training part",
    "from medai_lessons.benchmarking import record", "keras.utils.set_random_seed(course.seed)",
    "the validation split chose the recipe; seeds 0, 1 and 2", "10,000 people", "a rate of 0.003",
    "1,000 samples (200 in fast mode)"])
def test_the_team_notes_check_leaves_learner_words_alone(text):
    assert not _team_notes(text)

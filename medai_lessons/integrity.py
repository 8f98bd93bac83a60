"""The integrity report: answers that are near-copies, listed for the instructor to judge.

A learner who installs the course can read its reference implementations (the functions of
``medai_lessons`` that the checkers compare against) and, in a source checkout, the chapters'
solutions. Nothing stops a copy from passing the tests; this report is how an instructor sees
it. For one chapter of an nbgrader course folder it compares, exercise by exercise, every
submitted answer (``submitted/<student>/<chapter>/<chapter>.ipynb``) with

- the course's reference implementation of that exercise (``grading.EXERCISES``),
- the chapter's own solution (the answer cell of ``source/<chapter>/<chapter>.ipynb``),
- every other student's answer to the same exercise,

and lists the pairs whose similarity reaches a threshold, with both pieces of code side by
side. It never changes a grade: a high score says "look at these two", and only a person can
say whether it is a copy (short answers in particular have few ways to be written).

How the similarity is measured:

1. **Normalised tokens.** Each answer is split into Python's tokens (``tokenize``); every
   identifier becomes ``V``, every number ``N``, every string ``S``; comments, blank lines,
   docstrings and ``raise NotImplementedError(...)`` statements are dropped. Keywords,
   operators and the block structure (new statement, indent, dedent) are kept. Renaming
   variables, changing literals, comments or layout therefore changes nothing.
2. **Fingerprints by winnowing.** Every run of ``k`` consecutive normalised tokens is hashed
   (a fixed hash, so that a report is the same on every run) and the robust winnowing of
   ``copydetect`` (``copydetect.utils.winnow``, the algorithm of "Winnowing: local algorithms
   for document fingerprinting") keeps the smallest hash of each window of ``window``
   hashes. Any shared run of at least ``k + window - 1`` tokens is certain to be found, runs
   shorter than ``k`` never count.
3. **Code everyone was given is not a match.** The fingerprints of the release's starter code
   and of every code cell the chapter shows (everything but the solutions and the hidden
   tests) are removed from every answer before comparing (copydetect's *boilerplate*).
   An answer that adds nothing to its starter code is *unanswered* and compared with nothing.
4. **Score.** For a pair (a, b), ``copydetect``'s overlap gives the share of a's fingerprinted
   tokens that lie in runs shared with b, and the same for b; the pair's score is the larger
   of the two (a copy padded with code of its own still shows on the other side). A pair is
   listed when its score reaches the threshold and the shared runs hold at least
   ``min_tokens`` tokens on both sides: less code than that has too few ways to be written to
   say anything.
"""

from __future__ import annotations

import csv
import hashlib
import html
import inspect
import io
import json
import keyword
import re
import textwrap
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medai_lessons.course import CourseError

#: defaults of ``medai-course integrity`` (see the module's docstring)
THRESHOLD = 0.6
MIN_TOKENS = 30
K = 12
WINDOW = 2
#: two students' pair is folded into "alike through the course code" when each of them is at
#: most this much less similar to that code than to each other
ALIKE_MARGIN = 0.1
#: the typical score with the course's code is shown from this many compared answers on
MIN_TYPICAL = 3
#: an answer cell longer than this is not compared (listed for a person to read instead)
MAX_ANSWER_CHARS = 100_000

REFERENCE = "reference implementation"
SOLUTION = "chapter solution"
_SOLUTION_BLOCK = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*$", re.S | re.M)
_HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*$",
                           re.S | re.M)
_DROPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}


# ---------------------------------------------------------------------------- tokens


@dataclass
class Tokens:
    """Normalised tokens of a piece of code and the line (1-based) each one starts on."""

    symbols: list[str]
    lines: list[int]


def _python_lines(code: str) -> str:
    """The code as the kernel reads it: Python as it is (a line that starts with ``%`` inside
    brackets is Python's modulo); a cell with magics without its magic and shell lines when
    that leaves Python, else as IPython rewrites it (within the grader's limits for such
    cells; past them, without those lines)."""
    from medai_lessons.grading import notebook_scan

    if notebook_scan.is_python(code):
        return code
    blanked = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                        for line in code.splitlines())
    if notebook_scan.is_python(blanked):  # magics as whole lines: left out, nothing to compare
        return blanked
    if len(code) <= notebook_scan.MAX_REWRITTEN_CHARS and \
            len(notebook_scan.MAGIC_LINE.findall(code)) <= notebook_scan.MAX_MAGIC_LINES:
        return notebook_scan.python_source(code)
    return blanked


def _raw_tokens(code: str) -> list[tokenize.TokenInfo]:
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(_python_lines(code)).readline):
            out.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # an answer that does not parse is compared as far as it tokenizes
    return out


def normalise(code: str) -> Tokens:
    """Identifiers -> ``V``, numbers -> ``N``, strings -> ``S``; keywords, operators and block
    structure kept; comments, blank lines, docstrings (a statement that is only a string) and
    ``raise NotImplementedError(...)`` dropped."""
    raw = _raw_tokens(code)
    symbols: list[str] = []
    lines: list[int] = []
    # Split into logical lines (each ends with NEWLINE) to drop whole statements.
    statement: list[tokenize.TokenInfo] = []

    def flush(stmt):
        meaningful = [t for t in stmt if t.type not in _DROPPED]
        body = [t for t in meaningful
                if t.type not in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
        if body and all(t.type == tokenize.STRING for t in body):
            meaningful = [t for t in meaningful if t.type in (tokenize.INDENT, tokenize.DEDENT)]
        elif (len(body) >= 2 and body[0].string == "raise"
              and body[1].string == "NotImplementedError"):
            meaningful = [t for t in meaningful if t.type in (tokenize.INDENT, tokenize.DEDENT)]
        for t in meaningful:
            inner = _code_in_string(t)
            if inner is not None:  # exec("""...""") holds code: compared as code
                symbols.extend(inner)
                lines.extend([t.start[0]] * len(inner))
            elif symbol := _symbol(t):  # stray whitespace that tokenize reports counts for nothing
                symbols.append(symbol)
                lines.append(t.start[0])

    for tok in raw:
        statement.append(tok)
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            flush(statement)
            statement = []
    flush(statement)
    return Tokens(symbols, lines)


def _code_in_string(tok: tokenize.TokenInfo) -> list[str] | None:
    """The normalised tokens of the code a string literal holds (a text of several lines that
    parses as Python and is more than expressions: ``exec(\"\"\"def f(x): ...\"\"\")``), or
    None for any other token."""
    import ast

    if tok.type != tokenize.STRING or len(tok.string) < 40:
        return None
    try:
        value = ast.literal_eval(tok.string)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, str) or "\n" not in value.strip() or len(value) > MAX_ANSWER_CHARS:
        return None
    try:
        tree = ast.parse(value)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if all(isinstance(node, ast.Expr) for node in tree.body):
        return None  # prose that happens to parse, or plain expressions
    return normalise(value).symbols


def _symbol(tok: tokenize.TokenInfo) -> str:
    if tok.type == tokenize.NAME:
        return tok.string if keyword.iskeyword(tok.string) else "V"
    if tok.type == tokenize.NUMBER:
        return "N"
    if tok.type == tokenize.STRING or tokenize.tok_name[tok.type].startswith("FSTRING"):
        return "S"
    if tok.type == tokenize.NEWLINE:
        return ";"
    if tok.type == tokenize.INDENT:
        return "{"
    if tok.type == tokenize.DEDENT:
        return "}"
    if tok.type == tokenize.OP:
        return tok.string
    return "?" if tok.string.strip() else ""


# ---------------------------------------------------------------------------- fingerprints


def _kgram_hashes(symbols: list[str], k: int) -> np.ndarray:
    """A fixed 52-bit hash of every run of k tokens (Python's own ``hash`` of a string changes
    from one process to the next, which would change which fingerprints winnowing keeps)."""
    out = []
    for i in range(len(symbols) - k + 1):
        digest = hashlib.blake2b("\x1f".join(symbols[i:i + k]).encode(), digest_size=8).digest()
        out.append(int.from_bytes(digest, "big") >> 12)  # exact in the float winnowing buffer
    return np.array(out, dtype=np.int64)


@dataclass
class Fingerprint:
    hashes: set
    index: dict  # hash -> token positions where that k-gram starts
    coverage: int  # tokens inside some kept k-gram: the size of what is compared
    k: int


def fingerprint(tokens: Tokens, k: int, window: int, boilerplate: set) -> Fingerprint:
    from copydetect.utils import get_token_coverage, winnow

    hashes = _kgram_hashes(tokens.symbols, k)
    if len(hashes):
        kept, idx = winnow(hashes, window_size=window, remove_duplicates=False)
    else:
        kept, idx = hashes, np.array([], dtype=np.int64)
    index: dict[int, list[int]] = {}
    for h, i in zip(kept.tolist(), idx.tolist(), strict=True):
        if h not in boilerplate:
            index.setdefault(h, []).append(i)
    coverage = int(get_token_coverage(index, k, len(tokens.symbols))) if index else 0
    return Fingerprint(set(index), index, coverage, k)


def overlap(a: Fingerprint, b: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """Token slices (2 x n arrays of starts and ends) of the runs a and b share, in a and b."""
    from copydetect.utils import find_fingerprint_overlap, get_copied_slices

    idx_a, idx_b = find_fingerprint_overlap(a.hashes, b.hashes, a.index, b.index)
    return get_copied_slices(idx_a, a.k), get_copied_slices(idx_b, b.k)


# ---------------------------------------------------------------------------- answers


@dataclass
class Answer:
    """One piece of code taking part: a student's answer cell, or a course document."""

    who: str  # student id, or REFERENCE / SOLUTION
    exercise: str
    code: str
    tokens: Tokens
    fp: Fingerprint | None = None
    where: str = ""  # for course documents: where the code comes from
    is_course: bool = False  # the course's code (never a student, whatever a folder is called)

    @property
    def label(self) -> str:
        return f"the {self.who}" if self.is_course else f"{self.who}'s answer"


@dataclass
class Pair:
    exercise: str
    a: Answer
    b: Answer
    fraction_a: float
    fraction_b: float
    shared_a: int
    shared_b: int
    lines_a: set[int]
    lines_b: set[int]
    #: for two students who are each listed with the same course document: that document
    both_near: str = ""

    @property
    def score(self) -> float:
        return max(self.fraction_a, self.fraction_b)

    @property
    def kind(self) -> str:
        return f"copy of the {self.b.who}" if self.b.is_course else "two students"

    @property
    def shared(self) -> int:
        return min(self.shared_a, self.shared_b)

    def summary(self) -> str:
        return (f"{self.fraction_a:.0%} of {self.a.label} and {self.fraction_b:.0%} of "
                f"{self.b.label} lie in shared runs ({self.shared} tokens)")


@dataclass
class ExerciseReport:
    exercise: str
    compared: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)
    too_long: list[str] = field(default_factory=list)
    course: list[Answer] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    #: course document -> student -> score of the pair, listed or not
    course_scores: dict[str, dict[str, float]] = field(default_factory=dict)

    def typical(self, who: str) -> float | None:
        """The median score of the compared answers with a course document: how alike this
        exercise's answers are anyway (None with fewer than MIN_TYPICAL answers)."""
        scores = list(self.course_scores.get(who, {}).values())
        return float(np.median(scores)) if len(scores) >= MIN_TYPICAL else None

    def converges(self, threshold: float) -> list[str]:
        """Course documents that half the answers or more reach the threshold with: either the
        exercise has few ways to be written (then a listed pair is weak evidence), or many
        copied; reading a few answers tells which, the numbers cannot."""
        return [d.who for d in self.course
                if (t := self.typical(d.who)) is not None and t >= threshold]

    @property
    def to_read(self) -> list[Pair]:
        """Pairs to read side by side: copies of course code, and student pairs that are not
        just two copies of the same course code."""
        return [p for p in self.pairs if not p.both_near]

    @property
    def alike_through_course(self) -> list[Pair]:
        return [p for p in self.pairs if p.both_near]


@dataclass
class IntegrityReport:
    chapter: str
    root: Path
    threshold: float
    min_tokens: int
    k: int
    window: int
    students: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # student -> why
    exercises: list[ExerciseReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pairs(self) -> list[Pair]:
        return [p for ex in self.exercises for p in ex.pairs]

    def flagged_students(self) -> set[str]:
        return {p.a.who for p in self.pairs} | {p.b.who for p in self.pairs if not p.b.is_course}

    def lines(self) -> list[str]:
        out = [f"Integrity report for {self.chapter} ({len(self.students)} submission(s) read, "
               f"threshold {self.threshold:g}, at least {self.min_tokens} shared tokens):"]
        for student, why in sorted(self.unreadable.items()):
            out.append(f"  NOT READ: {student}: {why}")
        for ex in self.exercises:
            head = (f"  {ex.exercise}: {len(ex.compared)} answer(s) compared"
                    + (f", {len(ex.unanswered)} unanswered" if ex.unanswered else "")
                    + (f", {len(ex.too_short)} too short to judge" if ex.too_short else "")
                    + (f", {len(ex.missing)} without the answer cell" if ex.missing else "")
                    + (f", {len(ex.too_long)} too long to compare: {', '.join(ex.too_long)}"
                       if ex.too_long else ""))
            out.append(head + (f"; {len(ex.pairs)} pair(s) to look at" if ex.pairs else
                               "; nothing above the threshold"))
            for who in ex.course:
                if (t := ex.typical(who.who)) is not None:
                    out.append(f"    median score with the {who.who}: {t:.2f}"
                               + (" (half the answers or more reach the threshold: few ways to "
                                  "write this one, or many copied; read a few to tell which)"
                                  if who.who in ex.converges(self.threshold) else ""))
            for p in ex.to_read:
                out.append(f"    {p.score:.2f}  {p.a.who} ~ {p.b.who}  ({p.kind}; "
                           f"{p.fraction_a:.0%} of {p.a.who}, {p.fraction_b:.0%} of {p.b.who})")
            for near in sorted({p.both_near for p in ex.alike_through_course}):
                alike = [p for p in ex.alike_through_course if p.both_near == near]
                out.append(f"    alike as both are near the {near}: "
                           + ", ".join(f"{p.a.who} ~ {p.b.who} {p.score:.2f}" for p in alike))
        n = len(self.pairs)
        out.append(f"{n} pair(s) above the threshold, involving {len(self.flagged_students())} "
                   "student(s). A high score asks a person to look; it is not proof and it "
                   "changes no grade.")
        return out

    # -------------------------------------------------------------- files

    CSV_COLUMNS = ("chapter", "exercise", "student", "other", "kind", "score",
                   "share_student", "share_other", "shared_tokens", "note", "student_code",
                   "other_code")

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.CSV_COLUMNS)
        safe = _spreadsheet_safe
        for p in self.pairs:
            writer.writerow([self.chapter, p.exercise, safe(p.a.who), safe(p.b.who), p.kind,
                             f"{p.score:.3f}", f"{p.fraction_a:.3f}", f"{p.fraction_b:.3f}",
                             p.shared, f"both near the {p.both_near}" if p.both_near else "",
                             safe(p.a.code), safe(p.b.code)])
        for student, why in sorted(self.unreadable.items()):
            writer.writerow([self.chapter, "", safe(student), "", safe(f"not read: {why}"), "",
                             "", "", "", "", "", ""])
        return out.getvalue()

    def to_html(self) -> str:
        e = html.escape
        parts = [
            "<!DOCTYPE html>",
            f"<html lang='en'><head><meta charset='utf-8'><title>Integrity report: "
            f"{e(self.chapter)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>Integrity report: {e(self.chapter)}</h1>",
            f"<p>Course folder <code>{e(str(self.root))}</code>; {len(self.students)} "
            f"submission(s) read; generated {e(time.strftime('%Y-%m-%d %H:%M'))}.</p>",
            "<p class='note'>Each pair below shares long runs of code once names, literals, "
            "comments and layout are set aside. <strong>This is for a person to judge and "
            "changes no grade.</strong> Short answers and standard formulas have few ways to "
            "be written, so honest answers can look alike; a copy can also be disguised beyond "
            "what this finds. Talk to the learner before drawing a conclusion.</p>",
            f"<p>Listed: score &ge; {self.threshold:g} (the larger share of either answer that "
            f"lies in shared runs) and at least {self.min_tokens} shared normalised tokens; "
            f"runs of {self.k} tokens, winnowing window {self.window}. Starter code and code "
            "the chapter shows never count. Highlighted lines hold shared runs.</p>",
        ]
        if self.unreadable:
            parts.append("<h2>Submissions that could not be read</h2><ul>")
            parts += [f"<li><b>{e(s)}</b>: {e(why)}</li>"
                      for s, why in sorted(self.unreadable.items())]
            parts.append("</ul>")
        parts.append("<h2>Summary</h2><table class='summary'><tr><th>exercise</th>"
                     "<th>compared</th><th>unanswered</th><th>too short to judge</th>"
                     "<th>pairs</th><th>median score with the reference</th></tr>")
        for ex in self.exercises:
            typical = ex.typical(REFERENCE)
            name = (f"<a href='#{e(ex.exercise)}'>{e(ex.exercise)}</a>" if _has_section(ex)
                    else e(ex.exercise))
            parts.append(f"<tr><td>{name}</td>"
                         f"<td>{len(ex.compared)}</td><td>{len(ex.unanswered)}</td>"
                         f"<td>{len(ex.too_short)}</td><td>{len(ex.pairs)}</td>"
                         f"<td>{'' if typical is None else f'{typical:.2f}'}</td></tr>")
        parts.append("</table>")
        for ex in filter(_has_section, self.exercises):
            parts.append(f"<h2 id='{e(ex.exercise)}'>{e(ex.exercise)}</h2>")
            sources = "; ".join(f"{e(c.who)}: <code>{e(c.where)}</code>" for c in ex.course)
            parts.append(f"<p>Compared with {sources or 'no course code'} and each other.</p>")
            for who in ex.converges(self.threshold):
                parts.append(f"<p class='note'>Half the answers or more reach the threshold "
                             f"with the {e(who)} (median score {ex.typical(who):.2f}). Either "
                             "this exercise has few ways to be written, and then a pair listed "
                             "here is weak evidence on its own, or many copied it: read a few "
                             "of the answers to tell which.</p>")
            if ex.too_short:
                parts.append(f"<p>Too short to judge: {e(', '.join(ex.too_short))}.</p>")
            if ex.missing:
                parts.append(f"<p>No answer cell: {e(', '.join(ex.missing))}.</p>")
            if ex.too_long:
                parts.append(f"<p>Not compared, longer than {MAX_ANSWER_CHARS:,} characters "
                             f"(read them yourself): {e(', '.join(ex.too_long))}.</p>")
            if not ex.pairs:
                parts.append("<p>No pair above the threshold.</p>")
            for p in ex.to_read:
                parts.append(
                    f"<div class='pair'><h3>{p.score:.2f}: {e(p.a.who)} and {e(p.b.who)} "
                    f"<span class='kind'>({e(p.kind)})</span></h3>"
                    f"<p>{e(p.summary())}.</p><table class='side'><tr>"
                    f"<th>{e(p.a.who)}</th><th>{e(p.b.who)}</th></tr><tr>"
                    f"<td>{_code_html(p.a.code, p.lines_a)}</td>"
                    f"<td>{_code_html(p.b.code, p.lines_b)}</td></tr></table></div>")
            if ex.alike_through_course:
                parts.append("<p>Alike because each is listed above with the same course "
                             "code (their code is shown there):</p><table class='summary'>"
                             "<tr><th>pair</th><th>score</th><th>both near the</th></tr>")
                parts += [f"<tr><td>{e(p.a.who)} and {e(p.b.who)}</td><td>{p.score:.2f}</td>"
                          f"<td>{e(p.both_near)}</td></tr>" for p in ex.alike_through_course]
                parts.append("</table>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, dest: Path) -> Path:
        dest = Path(dest).expanduser().resolve()
        if dest.is_dir():
            raise CourseError(f"--to {dest} is a folder: give the report's file name, e.g. "
                              f"--to {dest / f'integrity-{self.chapter}.html'}")
        if dest.suffix.lower() == ".csv":
            text = self.to_csv()
        elif dest.suffix.lower() in (".html", ".htm"):
            text = self.to_html()
        else:
            raise CourseError(f"--to {dest.name}: the report is written as .html or .csv; "
                              "give a file name ending in one of them")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        return dest


def _has_section(ex: ExerciseReport) -> bool:
    """Whether the HTML report gives the exercise a section (the summary row says the rest)."""
    return bool(ex.compared or ex.pairs or ex.too_long or ex.too_short)


def _spreadsheet_safe(text: str) -> str:
    """A learner's text as a spreadsheet shows it, never as a formula: a cell that starts with
    ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 110em; }
.note { background: #fff6d5; padding: .6em; border-left: 4px solid #d9a400; }
table.summary td, table.summary th { padding: .2em .8em; text-align: left; }
table.side { width: 100%; table-layout: fixed; border-collapse: collapse; }
table.side td, table.side th { vertical-align: top; border: 1px solid #ccc; padding: .3em;
  text-align: left; }
pre { margin: 0; white-space: pre-wrap; font-size: 85%; }
mark { background: #ffd6d6; }
.kind { font-weight: normal; color: #555; }
"""


def _code_html(code: str, marked: set[int]) -> str:
    rows = []
    for n, line in enumerate(code.splitlines(), 1):
        text = html.escape(line) or " "
        rows.append(f"<mark>{text}</mark>" if n in marked else text)
    return "<pre>" + "\n".join(rows) + "</pre>"


# ---------------------------------------------------------------------------- the chapter


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata")
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def _is_answer(cell) -> bool:
    return cell.get("cell_type") == "code" and bool(_nbgrader(cell).get("solution"))


def _source(cell) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(line for line in src if isinstance(line, str))
    return src if isinstance(src, str) else ""


def starter_code(source: str) -> str:
    """A source cell as the release shows it: each solution block replaced by nbgrader's stub,
    hidden tests removed."""
    def stub(match):
        indent = match.group(1)
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()"
    return _HIDDEN_BLOCK.sub("", _SOLUTION_BLOCK.sub(stub, source))


def solution_code(source: str) -> str:
    """A source answer cell as the learner would write it: without nbgrader's delimiters."""
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^[ \t]*(async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code,
                     re.M) is not None


@dataclass
class _Exercise:
    name: str
    grade_id: str
    starter: str
    solution: str
    reference: str | None
    reference_where: str


def chapter_exercises(source_nb: dict) -> list[_Exercise]:
    """The chapter's exercises: the functions its source's answer cells define (their names
    are the exercise names), each with the course's reference implementation when
    ``grading.EXERCISES`` registers one."""
    from medai_lessons.grading import EXERCISES

    out = []
    for c in source_nb.get("cells", []):
        if not _is_answer(c):
            continue
        src = _source(c)
        for name in _function_names(solution_code(src)):
            ref_code, where = None, ""
            if name in EXERCISES:
                reference = EXERCISES[name][1]
                try:
                    ref_code = textwrap.dedent(inspect.getsource(reference))
                    where = f"{reference.__module__}.{reference.__qualname__}"
                except (OSError, TypeError):  # no source to read (a compiled function)
                    pass
            out.append(_Exercise(name, _nbgrader(c).get("grade_id", ""), starter_code(src),
                                 solution_code(src), ref_code, where))
    return out


def _function_names(code: str) -> list[str]:
    """Names of the functions a cell defines at its top level."""
    import ast

    try:
        tree = ast.parse(_python_lines(code))
    except SyntaxError:
        return re.findall(r"^(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", code, re.M)
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _answer_position(nb: dict, ex: _Exercise) -> int | None:
    cells = nb.get("cells", [])
    for n, c in enumerate(cells):
        if isinstance(c, dict) and _is_answer(c) and _nbgrader(c).get("grade_id") == ex.grade_id:
            return n
    for n, c in enumerate(cells):
        if isinstance(c, dict) and c.get("cell_type") == "code" and _defines(_source(c), ex.name):
            return n
    return None


def _as_kernel_notebook(nb: dict):
    """The submission's readable code cells as nbformat cells at their positions (cells no
    notebook editor writes become empty markdown cells), for the grader's own reading."""
    from nbformat import from_dict

    cells = []
    for c in nb.get("cells", []):
        ok = isinstance(c, dict) and c.get("cell_type") == "code"
        meta = c.get("metadata") if ok else None
        meta = meta if isinstance(meta, dict) else {}
        tags = meta.get("tags")
        kept = {"nbgrader": _nbgrader(c) if ok else {},
                "tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []}
        cells.append(from_dict({"cell_type": "code" if ok else "markdown",
                                "source": _source(c) if ok else "", "metadata": kept}))
    return from_dict({"cells": cells})


def _answers(nb: dict, exercises: list[_Exercise], given: set, k: int) -> dict[str, str | None]:
    """Each exercise's code in a submission: its answer cell, followed by every other cell the
    grader would run for it, as the notebook's text shows (the learner's helpers, or the whole
    answer moved to a cell of its own); not the cells every learner was given, and not other
    exercises' answer cells (each is compared under its own exercise)."""
    from medai_lessons.grading.execute import is_test_cell, kernel_cells
    from medai_lessons.grading.notebook_scan import scan

    positions = {ex.name: _answer_position(nb, ex) for ex in exercises}
    kernel_nb = _as_kernel_notebook(nb)
    found = scan(kernel_cells(kernel_nb))
    sources = {n: src for n, src in kernel_cells(kernel_nb)}
    answering: dict[int, set[str]] = {}  # answer cell -> the exercises it answers
    for name, at in positions.items():
        if at is not None:
            answering.setdefault(at + 1, set()).add(name)
    out: dict[str, str | None] = {}
    for ex in exercises:
        at = positions[ex.name]
        test = None if at is None else next(  # the exercise's tests: the first after its answer
            (n + 1 for n, c in enumerate(kernel_nb.cells) if n > at and is_test_cell(c)), None)
        # another exercise's answer cell counts when this exercise uses code of it other than
        # that exercise's own function (a helper, or a copy, kept there)
        extra = sorted(
            n for n, names in found.cells_of(ex.name, test).items()
            if (at is None or n != at + 1) and not names <= answering.get(n, set())
            and not set(_kgram_hashes(normalise(sources[n]).symbols, k).tolist()) <= given)
        parts = [] if at is None else [_source(nb["cells"][at])]
        parts += [f"# cell {n} of the notebook, which {ex.name} uses\n{sources[n]}"
                  for n in extra]
        out[ex.name] = "\n\n".join(parts) if parts else None
    return out


def _read_submission(path: Path) -> tuple[dict | None, str | None]:
    """(notebook as a dict, None) or (None, why it cannot be read)."""
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob("*.ipynb"))
        found = f"found {', '.join(others)}" if others else "the folder holds no notebook"
        return None, f"missing file: expected {path.name} ({found})"
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} is not valid JSON ({exc}); the file is damaged"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, f"{path.name} is not a notebook (no list of cells)"
    return nb, None


def build_report(root: Path, chapter: str, threshold: float = THRESHOLD,
                 min_tokens: int = MIN_TOKENS, k: int = K,
                 window: int = WINDOW) -> IntegrityReport:
    """The integrity report of ``chapter`` in the nbgrader course folder ``root``."""
    if not 0 < threshold <= 1:
        raise CourseError(f"--threshold must be in (0, 1], got {threshold:g}: e.g. 0.6 lists "
                          "pairs whose shared runs make up 60 % of either answer")
    if min_tokens < 1 or k < 2 or window < 1:
        raise CourseError("--min-tokens must be >= 1 (the internal k >= 2, window >= 1)")
    started = time.monotonic()
    root = Path(root).expanduser().resolve()
    source_path = root / "source" / chapter / f"{chapter}.ipynb"
    if not source_path.is_file():
        known = sorted(d.name for d in (root / "source").glob("*")
                       if (d / f"{d.name}.ipynb").is_file())
        raise CourseError(f"No source/{chapter}/{chapter}.ipynb in {root}: the report compares "
                          "answers with the chapter's source. Chapters there: "
                          f"{', '.join(known) or 'none'} (`medai-course release {chapter} "
                          f"--course-root {root}` puts the course's source there).")
    source_nb = json.loads(source_path.read_text(encoding="utf-8"))
    base = root / "submitted"
    folders = sorted(d for d in base.glob(f"*/{chapter}") if d.is_dir()) if base.is_dir() else []
    if not folders:
        raise CourseError(
            f"No submissions of {chapter} in {base}: the report reads "
            f"submitted/<student>/{chapter}/{chapter}.ipynb (`nbgrader collect` or "
            "`nbgrader zip_collect` put them there).")
    report = IntegrityReport(chapter, root, threshold, min_tokens, k, window)
    exercises = chapter_exercises(source_nb)
    # Code every learner was given: starter code of the answers, the chapter's other cells.
    given = set()
    for c in source_nb.get("cells", []):
        if c.get("cell_type") == "code" and not _is_answer(c):
            given |= set(_kgram_hashes(normalise(starter_code(_source(c))).symbols, k).tolist())
    for ex in exercises:
        given |= set(_kgram_hashes(normalise(ex.starter).symbols, k).tolist())

    submitted: dict[str, dict[str, str | None]] = {}  # student -> exercise -> its code
    for folder in folders:
        student = folder.parent.name
        path = folder / f"{chapter}.ipynb"
        nb, why = _read_submission(path)
        if not why:
            try:
                submitted[student] = _answers(nb, exercises, given, k)
            except Exception as exc:  # damage the checks above cannot foresee: this one only
                why = (f"{path.name} has cells the report cannot read ({type(exc).__name__}: "
                       f"{exc}); open it in JupyterLab to see what is wrong")
        if why:
            report.unreadable[student] = why
        else:
            report.students.append(student)

    for ex in exercises:
        er = ExerciseReport(ex.name)
        starter_symbols = normalise(ex.starter).symbols
        docs = []
        if ex.reference:
            docs.append(Answer(REFERENCE, ex.name, ex.reference, normalise(ex.reference),
                               where=ex.reference_where, is_course=True))
        docs.append(Answer(SOLUTION, ex.name, ex.solution, normalise(ex.solution),
                           where=f"source/{chapter}/{chapter}.ipynb, cell {ex.grade_id}",
                           is_course=True))
        for d in docs:
            d.fp = fingerprint(d.tokens, k, window, given)
        er.course = docs
        answers = []
        for student, cells in submitted.items():
            code = cells[ex.name]
            if code is None:
                er.missing.append(student)
                continue
            if len(code) > MAX_ANSWER_CHARS:
                er.too_long.append(student)
                continue
            tokens = normalise(code)
            fp = fingerprint(tokens, k, window, given)
            if tokens.symbols == starter_symbols:
                er.unanswered.append(student)
                continue
            if fp.coverage < min_tokens:  # also an answer with no fingerprint of its own
                er.too_short.append(student)
                continue
            answers.append(Answer(student, ex.name, code, tokens, fp))
            er.compared.append(student)
        er.pairs = _pairs(ex.name, answers, docs, threshold, min_tokens)
        er.course_scores = {d.who: {a.who: _score(a.fp, d.fp) for a in answers} for d in docs}
        report.exercises.append(er)
    report.seconds = time.monotonic() - started
    return report


def _pairs(exercise: str, answers: list[Answer], docs: list[Answer], threshold: float,
           min_tokens: int) -> list[Pair]:
    """Every (answer, course document) and (answer, answer) pair at or above the threshold,
    highest score first. Candidates come from an index of shared fingerprints, so pairs that
    share nothing cost nothing."""
    owners: dict[int, list[int]] = {}
    everyone = answers + docs
    for n, doc in enumerate(everyone):
        for h in doc.fp.hashes:
            owners.setdefault(h, []).append(n)
    candidates = set()
    for members in owners.values():
        for i in members:
            if i >= len(answers):
                continue
            candidates.update((i, j) for j in members if j > i)
    out = []
    for i, j in sorted(candidates):
        a, b = everyone[i], everyone[j]
        slices_a, slices_b = overlap(a.fp, b.fp)
        shared_a = int(np.sum(slices_a[1] - slices_a[0])) if slices_a.size else 0
        shared_b = int(np.sum(slices_b[1] - slices_b[0])) if slices_b.size else 0
        pair = Pair(exercise, a, b, shared_a / a.fp.coverage, shared_b / b.fp.coverage,
                    shared_a, shared_b, _lines(a.tokens, slices_a), _lines(b.tokens, slices_b))
        if pair.score >= threshold and min(shared_a, shared_b) >= min_tokens:
            out.append(pair)
    # Two students who each copied the same course code are alike for that reason: their
    # pair is no closer than each of them is to that code (give or take ALIKE_MARGIN).
    near: dict[tuple[str, str], float] = {(p.a.who, p.b.who): p.score
                                          for p in out if p.b.is_course}
    for p in out:
        if not p.b.is_course:
            common = [d.who for d in docs
                      if min(near.get((p.a.who, d.who), 0.0), near.get((p.b.who, d.who), 0.0))
                      >= p.score - ALIKE_MARGIN]
            p.both_near = " and the ".join(sorted(common))
    out.sort(key=lambda p: (-p.score, not p.b.is_course, p.a.who, p.b.who))
    return out


def _score(a: Fingerprint, b: Fingerprint) -> float:
    """A pair's score (the larger share of either side in shared runs), listed or not."""
    if not a.coverage or not b.coverage:
        return 0.0
    slices_a, slices_b = overlap(a, b)
    if not slices_a.size:
        return 0.0
    return max(float(np.sum(slices_a[1] - slices_a[0])) / a.coverage,
               float(np.sum(slices_b[1] - slices_b[0])) / b.coverage)


def _lines(tokens: Tokens, slices: np.ndarray) -> set[int]:
    """Lines whose tokens lie mostly (half or more) in shared runs; block structure (new
    statement, indent, dedent) is not counted. A run that only reaches into a line with its
    first or last tokens does not mark it."""
    total: dict[int, int] = {}
    shared: dict[int, int] = {}
    inside = np.zeros(len(tokens.symbols), dtype=bool)
    for start, end in zip(*(slices.astype(int).tolist() if slices.size else ([], [])),
                          strict=True):
        inside[start:end] = True
    for n, (symbol, line) in enumerate(zip(tokens.symbols, tokens.lines, strict=True)):
        if symbol in (";", "{", "}"):
            continue
        total[line] = total.get(line, 0) + 1
        shared[line] = shared.get(line, 0) + int(inside[n])
    return {line for line, count in total.items() if 2 * shared[line] >= count}

"""The feedback a learner reads: nbgrader's HTML, made to work offline and to say what is
not graded yet.

nbgrader's feedback page loads MathJax from a CDN, so opened offline every formula stays raw
LaTeX (``$z = w^\\top x + b$``); and a written answer that no one has graded yet shows
"Score: 0.0 / 3.0", as if it had earned nothing. :func:`finish` rewrites a feedback file:

- every formula of the notebook's text becomes MathML (``latex2mathml``), which browsers draw
  themselves, and the CDN script goes: the page needs no network and calls no server;
- each cell that waits for a person's grade reads "not graded yet (3 points)", and the
  notebook's total says how many points are still to be graded (they count 0 until then).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
# text that is code, not prose: never look for formulas inside it
_LITERAL = re.compile(r"(<(pre|code|script|style)\b.*?</\2>)", re.S | re.I)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$<>]{1,500}?)(?<![\\$])\$(?!\$)", re.S)


#: the MathML elements a formula may become (no ``maction``, no ``mglyph``, which loads an
#: image); an element of any other name, or an attribute that runs or loads something, means
#: the converter passed text through as markup, and the formula stays TeX
_MATHML_TAGS = frozenset({
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace",
    "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot", "mstyle", "mtable", "mtr", "mtd",
    "mlabeledtr", "munder", "mover", "munderover", "menclose", "mpadded", "mphantom", "merror",
    "mfenced", "mmultiscripts", "mprescripts", "none"})


def _safe_mathml(markup: str) -> bool:
    """Whether ``markup`` holds MathML elements only, with no attribute that runs or loads
    anything (``latex2mathml`` writes the text of ``\\text{...}`` into ``<mtext>`` as it is:
    an ``<img onerror=...>`` there ran in the feedback page)."""
    from html.parser import HTMLParser

    found: list[tuple[str, list[str]]] = []

    class Tags(HTMLParser):  # read as the browser reads it (the converter's "&" stays bare)
        def handle_starttag(self, tag, attrs):
            found.append((tag, [name for name, _ in attrs]))

        handle_startendtag = handle_starttag

    Tags(convert_charrefs=True).feed(markup)
    return bool(found) and all(
        tag.split(":")[-1] in _MATHML_TAGS
        and not any(name.split(":")[-1].startswith("on")
                    or name.split(":")[-1] in ("href", "src", "style") for name in names)
        for tag, names in found)


def _mathml(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    source = html.unescape(tex).strip()
    try:
        markup = convert(source, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - a formula the converter cannot read stays readable TeX
        markup = None
    if markup is not None and _safe_mathml(markup):
        return markup
    return f"<code>{html.escape(source)}</code>"


def formulas_to_mathml(page: str) -> tuple[str, int]:
    """Every ``$...$`` and ``$$...$$`` outside code as MathML; returns (page, formulas)."""
    count = 0

    def display(m: re.Match) -> str:
        nonlocal count
        count += 1
        return _mathml(m.group(1), True)

    def inline(m: re.Match) -> str:
        nonlocal count
        count += 1
        return _mathml(m.group(1), False)

    parts = _LITERAL.split(page)
    out = []
    # re.split with two groups yields: text, whole literal, tag name, text, ...
    for i in range(0, len(parts), 3):
        text = _INLINE.sub(inline, _DISPLAY.sub(display, parts[i]))
        out.append(text)
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out), count


def mark_not_graded(page: str, waiting: dict[str, float], notebook: str) -> str:
    """Say "not graded yet" for each grade_id in ``waiting`` (grade_id -> points) and in the
    notebook's total, where nbgrader shows a score of 0."""
    def points(p: float) -> str:
        return f"{p:g} point{'s' if p != 1 else ''}"

    for gid, p in waiting.items():
        name = re.escape(gid)
        page = re.sub(rf'(<a href="#{name}">[^<]*</a> )\(Score: [0-9.]+ / [0-9.]+\)',
                      rf"\1(not graded yet, {points(p)})", page)
        page = re.sub(rf'(<a name="{name}"></a>.*?)Score: [0-9.]+ / [0-9.]+',
                      rf"\1Score: not graded yet ({points(p)})", page, count=1, flags=re.S)
    if waiting:
        total = sum(waiting.values())
        page = re.sub(rf"(<h4>{re.escape(notebook)} \(Score: [0-9.]+ / [0-9.]+)\)",
                      rf"\1; {points(total)} of written answers not graded yet, counted as 0 "
                      r"until they are)", page, count=1)
    return page


def finish(path: Path, waiting: dict[str, float] | None = None) -> int:
    """Rewrite the feedback file ``path`` in place (see the module docstring); returns the
    number of formulas drawn as MathML."""
    path = Path(path)
    page = path.read_text(encoding="utf-8")
    head, sep, body = page.partition("<body")
    head = _MATHJAX.sub("<!-- formulas are MathML: no MathJax, no network -->", head)
    body, count = formulas_to_mathml(body)
    page = head + sep + body
    if waiting:
        page = mark_not_graded(page, waiting, path.stem)
    path.write_text(page, encoding="utf-8")
    return count

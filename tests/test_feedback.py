"""The feedback page works offline (formulas as MathML, no CDN) and says what is not graded
yet; the whole cycle is in test_cli_instructor.py."""

from __future__ import annotations

import json

import pytest

from conftest import chapter_dirs
from medai_lessons.feedback import finish, formulas_to_mathml, mark_not_graded

PAGE = """<html><head>
<!-- Load mathjax -->
<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js"> </script>
<!-- End of mathjax configuration -->
</head><body>
<h4>ch09 (Score: 4.0 / 7.0)</h4>
<li><a href="#written_x">Written response</a> (Score: 0.0 / 3.0)</li>
<p>The loss $L = -\\log p$ and $$\\sigma(z) = \\frac{1}{1 + e^{-z}}$$ with $a &lt; b$.</p>
<div class="highlight"><pre>price = "$5"; other = "$6"</pre></div>
<p>In code: <code>$HOME</code>.</p>
<a name="written_x"></a><div>Score: 0.0 / 3.0 <a href="#top">(Top)</a></div>
</body></html>
"""


def test_finish_draws_formulas_as_mathml_and_marks_what_is_not_graded(tmp_path):
    path = tmp_path / "ch09.html"
    path.write_text(PAGE, encoding="utf-8")
    assert finish(path, {"written_x": 3.0}) == 3
    page = path.read_text(encoding="utf-8")
    assert "cdnjs" not in page and "<script" not in page
    assert page.count("<math") == 3 and 'display="block"' in page
    assert "$L = -\\log p$" not in page and "&lt; b$" not in page
    assert 'price = "$5"; other = "$6"' in page and "<code>$HOME</code>" in page
    assert "(not graded yet, 3 points)" in page and "Score: not graded yet (3 points)" in page
    assert "(Score: 4.0 / 7.0; 3 points of written answers not graded yet" in page


def test_a_graded_page_keeps_its_scores():
    assert mark_not_graded(PAGE, {}, "ch09") == PAGE


def test_every_formula_of_the_chapters_converts():
    from latex2mathml.converter import convert

    n = 0
    for d in chapter_dirs():
        for cell in json.loads((d / f"{d.name}.ipynb").read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                page, count = formulas_to_mathml(text)
                n += count
                assert "<code>" not in page or "<code>" in text, (d.name, text[:200])
    assert n > 200
    assert convert("z = w^\\top x + b").startswith("<math")


#: a red-team helper, round 11: latex2mathml writes the text of \text{...} and \mbox{...} into
#: <mtext> as markup, so an escaped tag in a written answer's formula (or in an HTML output's)
#: became a live one in the feedback page: the script ran and forged a score above the real one
MARKUP_IN_FORMULAS = [
    r"$\text{&lt;img/src=&quot;x&quot;/onerror=&quot;document.title='XSS'&quot;&gt;}$",
    r"$$\frac{a}{b} \mbox{&lt;svg onload=alert(1)&gt;}$$",
    r"$x \text{&lt;a href=&quot;javascript:alert(1)&quot;&gt;click&lt;/a&gt;}$",
    r"$\text{&lt;h4&gt;Score: 14.0 / 14.0&lt;/h4&gt;}$",
]


@pytest.mark.parametrize("formula", MARKUP_IN_FORMULAS)
def test_a_formula_cannot_put_markup_in_the_page(formula):
    page, count = formulas_to_mathml(f"<p>Answer: {formula} and $z = w^\\top x + b$.</p>")
    assert count == 2 and page.count("<math") == 1, page      # the honest formula is drawn
    assert "<img" not in page and "<svg" not in page and "<a " not in page \
        and "<h4>" not in page, page
    assert "<code>" in page                                    # the other stays readable TeX

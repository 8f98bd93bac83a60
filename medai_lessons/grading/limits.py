"""A limit on the size of each output that autograding keeps (the course's nbgrader config
puts it in place of nbgrader's own ``LimitOutput``).

nbgrader's ``LimitOutput`` keeps at most ``max_lines`` lines of printed output per cell, but a
single line has no limit: an answer that prints 50 MB on one line is graded correctly and then
carries its 50 MB into the autograded notebook, the gradebook's views and every feedback file;
images and JSON have no limit at all. :class:`LimitOutputSize` does what ``LimitOutput`` does,
then cuts every printed text and text result to ``max_chars`` characters (keeping its
beginning and its end and saying how much was cut), removes any other output (an image, JSON)
larger than ten times that, and keeps at most ``max_cell_chars`` of all of a cell's outputs
together. Errors are kept (grading reads that there is one) and cut the same way. HTML and SVG
are sanitized and scripts removed (nbconvert's ``SanitizeHTML``), so that no output of a
submission runs in an instructor's or a learner's browser. So are its markdown cells (the
written answers, and any cell the learner added or changed), which the feedback page and the
formgrader render as they are: a cell whose rendered HTML holds anything beyond the tags and
attributes markdown itself makes (a script, an event handler, an ``iframe``, an ``svg``) is
replaced by its cleaned HTML, and cut to ``max_markdown_chars``; a raw cell is never passed
to HTML as it is; an image's width and height must be numbers (the HTML templates write them
unquoted, so a text there could add an event handler).

This module is imported by ``course/nbgrader_config.py`` (in nbgrader's process), never by a
notebook's kernel.
"""

from __future__ import annotations

from nbgrader.preprocessors import LimitOutput
from traitlets import Integer

#: what rendered markdown may hold: the tags and attributes markdown makes, and links and
#: images to the web, to data or to the cell's attachments (never ``javascript:``)
MARKDOWN_TAGS = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "img", "table", "thead", "tbody",
    "tr", "th", "td", "pre", "code", "blockquote", "ul", "ol", "li", "em", "strong", "b", "i",
    "a", "sup", "sub", "del", "s", "span", "div", "details", "summary", "dl", "dt", "dd",
    "kbd"})
MARKDOWN_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "title", "width", "height"],
                       "th": ["align"], "td": ["align"], "ol": ["start"], "*": ["class", "id"]}
MARKDOWN_PROTOCOLS = frozenset({"http", "https", "mailto", "data", "attachment"})


def clean_markdown(source: str, attachments: dict | None = None) -> str | None:
    """``None`` when the markdown renders to nothing beyond :data:`MARKDOWN_TAGS` and
    :data:`MARKDOWN_ATTRIBUTES`; otherwise its rendered HTML with everything else removed (its
    text, escaped, where it cannot be rendered at all: an attachment it names is missing)."""
    import html as html_text

    import bleach
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    try:  # as the page's template renders it, the cell's attachments included
        html = MarkdownWithMath(renderer=IPythonRenderer(
            escape=False, attachments=attachments or {})).render(source)
    except Exception:  # noqa: BLE001 - whatever the renderer refuses is shown as text
        return f"<pre>{html_text.escape(source)}</pre>"
    clean = bleach.clean(html, tags=MARKDOWN_TAGS, attributes=MARKDOWN_ATTRIBUTES,
                         protocols=MARKDOWN_PROTOCOLS, strip=True)
    return None if clean == html else clean


def _dimension(value) -> bool:
    """An image's width or height as the HTML templates can write it unquoted."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) or (
        isinstance(value, str) and value.replace(".", "", 1).isdigit())


def coalesce_streams(outputs: list) -> list:
    """A cell's outputs with each stream's pieces joined into one output, carriage returns
    applied and stdout before stderr, as nbclient's ``coalesce_streams`` does (its backspace
    step never runs), but in time linear in the text: nbclient's regular expression for a
    carriage return takes time quadratic in the length of a line (one ``print`` of 600,000
    characters cost the grader 137 s of CPU, two million characters most of an hour), after
    the cell's time limit."""
    out, streams = [], {}
    for output in outputs:
        if output.get("output_type") == "stream":
            if output["name"] in streams:
                streams[output["name"]]["text"] += output["text"]
                continue
            streams[output["name"]] = output
        out.append(output)
    for output in streams.values():
        output["text"] = _carriage_returns(output["text"])
    for i, output in enumerate(out):  # stdout first (the two arrive in either order)
        if output.get("output_type") == "stream" and output["name"] == "stderr" \
                and i + 1 < len(out) and out[i + 1].get("output_type") == "stream" \
                and out[i + 1]["name"] == "stdout":
            out.insert(i, out.pop(i + 1))
    return out


def _carriage_returns(text: str) -> str:
    """Each line shows what follows its last carriage return (one at its very end, before the
    newline, is kept, as a terminal shows it)."""
    if "\r" not in text:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        last = line.rfind("\r", 0, len(line) - 1)
        if last >= 0:
            lines[i] = line[last + 1:]
    return "\n".join(lines)


class LimitOutputSize(LimitOutput):
    """nbgrader's ``LimitOutput`` plus a limit of ``max_chars`` characters per output; the
    submission's markdown and image sizes made safe to render."""

    max_markdown_chars = Integer(
        20_000,
        help="maximum number of characters kept of a markdown cell (the course's longest is "
             "under 5,000; rendering costs grow faster than the size)").tag(config=True)
    max_markdown_total = Integer(
        200_000,
        help="maximum number of characters of all markdown cells of a notebook together (the "
             "course's longest chapter has about 40,000); later cells are replaced by a "
             "note").tag(config=True)
    _markdown_used = 0

    def preprocess(self, nb, resources):
        self._markdown_used = 0
        return super().preprocess(nb, resources)

    max_chars = Integer(
        20_000,
        help="maximum number of characters kept of each printed output or text result "
             "(-1 means no limit)",
    ).tag(config=True)

    def _cut(self, text: str) -> str:
        if self.max_chars < 0 or len(text) <= self.max_chars:
            return text
        head = self.max_chars * 3 // 4
        tail = self.max_chars - head
        cut = len(text) - head - tail
        return (f"{text[:head]}\n... {cut:,} characters of output cut by the course's "
                f"grader ...\n{text[-tail:] if tail else ''}")

    max_cell_chars = Integer(
        200_000,
        help="maximum number of characters kept of all outputs of one cell together (images "
             "and JSON included); later outputs are replaced by a note (-1 means no limit)",
    ).tag(config=True)

    def _note(self, what: str, size: int) -> str:
        return f"({what} of {size:,} characters removed by the course's grader)\n"

    def preprocess_cell(self, cell, resources, cell_index):
        import json

        from nbformat.v4 import new_output

        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type == "markdown":
            source = cell.source
            self._markdown_used += min(len(source), self.max_markdown_chars)
            if self._markdown_used > self.max_markdown_total:
                cell.source = (f"({len(source):,} characters of markdown removed by the "
                               "course's grader: the notebook's markdown cells together are "
                               f"over {self.max_markdown_total:,} characters)")
                return cell, resources
            if len(source) > self.max_markdown_chars:
                source = (source[:self.max_markdown_chars]
                          + f"\n\n({len(source) - self.max_markdown_chars:,} characters of "
                            "this cell cut by the course's grader)")
            clean = clean_markdown(source, cell.get("attachments"))
            if clean is not None:
                source = ("<p><em>(HTML that a page must not run was removed from this cell "
                          "by the course's grader)</em></p>\n" + clean)
            cell.source = source
            return cell, resources
        if cell.cell_type == "raw":  # shown as text, never passed to the page as HTML
            for key in ("raw_mimetype", "format"):
                cell.metadata.pop(key, None)
            return cell, resources
        if cell.cell_type != "code":
            return cell, resources
        from nbconvert.preprocessors.sanitize import SanitizeHTML

        # no script of a submission reaches an instructor's or a learner's browser
        cell.outputs = SanitizeHTML().sanitize_code_outputs(cell.outputs)
        used, kept = 0, []
        for output in cell.outputs:
            for shown in list(output.get("metadata", {}).values()):
                if isinstance(shown, dict):  # {"image/png": {"width": ..., "height": ...}}
                    for key in ("width", "height"):
                        if key in shown and not _dimension(shown[key]):
                            del shown[key]
            if output.output_type == "error":  # grading reads only that there is one
                output.evalue = self._cut(str(output.get("evalue", "")))
                output.traceback = [self._cut(line) for line in output.get("traceback", [])[:60]]
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for mime, value in list(output.get("data", {}).items()):
                    if mime.startswith("text/") and isinstance(value, str):
                        output.data[mime] = self._cut(value)
                        continue
                    size = len(value) if isinstance(value, str) else len(json.dumps(value))
                    if self.max_chars >= 0 and size > 10 * self.max_chars:
                        del output.data[mime]
                        output.data["text/plain"] = self._note(f"an output of type {mime}", size)
            size = len(json.dumps(output))
            if self.max_cell_chars >= 0 and used + size > self.max_cell_chars \
                    and output.output_type != "error":
                kept.append(new_output("stream", name="stdout",
                                       text=self._note("an output", size)))
                used += 100
                continue
            used += size
            kept.append(output)
        cell.outputs = kept
        return cell, resources

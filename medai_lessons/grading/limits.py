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
submission runs in an instructor's or a learner's browser.

This module is imported by ``course/nbgrader_config.py`` (in nbgrader's process), never by a
notebook's kernel.
"""

from __future__ import annotations

from nbgrader.preprocessors import LimitOutput
from traitlets import Integer


class LimitOutputSize(LimitOutput):
    """nbgrader's ``LimitOutput`` plus a limit of ``max_chars`` characters per output."""

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
        if cell.cell_type != "code":
            return cell, resources
        from nbconvert.preprocessors.sanitize import SanitizeHTML

        # no script of a submission reaches an instructor's or a learner's browser
        cell.outputs = SanitizeHTML().sanitize_code_outputs(cell.outputs)
        used, kept = 0, []
        for output in cell.outputs:
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

"""A limit on the size of each output that autograding keeps (the course's nbgrader config
puts it in place of nbgrader's own ``LimitOutput``).

nbgrader's ``LimitOutput`` keeps at most ``max_lines`` lines of printed output per cell, but a
single line has no limit: an answer that prints 50 MB on one line is graded correctly and then
carries its 50 MB into the autograded notebook, the gradebook's views and every feedback file.
:class:`LimitOutputSize` does what ``LimitOutput`` does and then cuts every printed text and
text result to ``max_chars`` characters, keeping its beginning and its end and saying how much
was cut. Errors are left as they are: grading reads them.

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

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for mime, value in list(output.get("data", {}).items()):
                    if mime.startswith("text/") and isinstance(value, str):
                        output.data[mime] = self._cut(value)
        return cell, resources

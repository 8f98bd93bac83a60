"""Start-up code of the kernel that grades a submission (not of a learner's own kernel).

nbgrader starts that kernel with ``Execute.extra_arguments`` from course/nbgrader_config.py,
which runs :func:`install` before the notebook's first cell. ``os._exit()`` in an answer would
otherwise kill the kernel, and nbgrader would then record no grade at all for the whole
notebook, right answers included. With the guard it raises ``SystemExit`` in that cell only:
the exercise scores 0 and the rest of the notebook is graded. (``sys.exit()``, ``exit()`` and
``quit()`` are already harmless in a kernel; a crash of the interpreter itself is not
something Python code can prevent: run graders in a container, see the instructor guide.)
"""

from __future__ import annotations

import os

KERNEL_ARGUMENT = ("--IPKernelApp.exec_lines=['import medai_lessons.grading.guard as _guard; "
                   "_guard.install(); del _guard']")


def _exit_disabled(status: int = 0, *args, **kwargs):
    raise SystemExit(f"os._exit({status}) is disabled while grading: it would end the grading "
                     "kernel. This cell counts as failed; the rest of the notebook is graded.")


def install() -> None:
    """Make ``os._exit`` (and ``posix._exit``, the same function) raise ``SystemExit`` in this
    process (the grading kernel), and cut its messages to sizes the grader takes."""
    import posix

    import medai_lessons.grading.agent  # noqa: F401 - binds the probes before any answer runs

    os._exit = _exit_disabled
    posix._exit = _exit_disabled
    cap_messages()


#: the most characters of one text a grading kernel sends in one message (printed output, a
#: result, an error, an input prompt): the grader takes no message part over 33 MB
#: (``remote.MAX_MESSAGE_BYTES``) and stops a kernel that sends one, which a learner's
#: accidental print of a huge array must not cost the rest of the notebook
OUTPUT_CHARS = 4 * 1024**2
#: the most characters of one answer to the grader (``grading.agent``'s display type) and of
#: one call back to it (an input prompt)
ANSWER_CHARS = 16 * 1024**2


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return (f"{text[:limit]}\n... {len(text) - limit:,} characters cut by the course's grader "
            "before they were sent\n")


def _capped(content):
    """``content`` of a message with every text in it cut to :data:`OUTPUT_CHARS` (answers
    to :data:`ANSWER_CHARS`), and any other data too large to send replaced by a note."""
    import json

    from medai_lessons.grading.agent import MIME

    if not isinstance(content, dict):
        return content
    out = dict(content)
    for key in ("text", "evalue", "ename"):
        if isinstance(out.get(key), str):
            out[key] = _cut(out[key], OUTPUT_CHARS)
    if isinstance(out.get("prompt"), str):
        out["prompt"] = _cut(out["prompt"], ANSWER_CHARS)
    if isinstance(out.get("traceback"), list):
        out["traceback"] = [_cut(str(line), OUTPUT_CHARS // 64) for line in out["traceback"][:200]]
    if isinstance(out.get("data"), dict):
        data, dropped = {}, []
        for mime, value in out["data"].items():
            size = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
            limit = ANSWER_CHARS if mime == MIME else OUTPUT_CHARS
            if size <= limit:
                data[mime] = value
            elif mime.startswith("text/") and isinstance(value, str):
                data[mime] = _cut(value, limit)
            else:
                dropped.append(mime)
        if dropped:
            note = (f"({', '.join(dropped)} output of more than {OUTPUT_CHARS:,} characters not "
                    "sent by the course's grader)")
            text = data.get("text/plain")
            data["text/plain"] = f"{text}\n{note}" if isinstance(text, str) else note
        out["data"] = data
    return out


def cap_messages() -> None:
    """Cut what this kernel sends to the grader to sizes the grader takes (see
    :data:`OUTPUT_CHARS`). A submission can undo this; the grader's own limits still hold."""
    from jupyter_client.session import Session

    send = Session.send
    if getattr(send, "medai_capped", False):
        return

    def capped_send(self, stream, msg_or_type, content=None, *args, **kwargs):
        if isinstance(msg_or_type, dict):
            msg_or_type = {**msg_or_type, "content": _capped(msg_or_type.get("content"))}
        else:
            content = _capped(content)
        return send(self, stream, msg_or_type, content, *args, **kwargs)

    capped_send.medai_capped = True
    Session.send = capped_send

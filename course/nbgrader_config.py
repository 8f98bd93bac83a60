"""nbgrader configuration of the MedAI Lessons course.

Instructors run nbgrader's own commands from this folder (``cd course``), e.g.
``nbgrader generate_assignment ch02_activations_losses`` or
``nbgrader autograde ch02_activations_losses``; the course's tests and the learner workspace
build on the same file.
"""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "medai-lessons"
c.CourseDirectory.root = "."

# Every chapter names the standard "python3" kernel, so grading works on any machine; the CPU
# and GPU kernels that learners may install are for interactive study only.
c.Execute.kernel_name = "python3"
# Seconds per cell. Graded cells never train (tests and autograding run in fast mode), so a
# cell that needs longer than this is stuck: the per-cell limit ends it and that cell scores 0.
c.Execute.timeout = 120
# An answer that crashes the kernel must cost its own cells, not the whole notebook.
c.Execute.interrupt_on_timeout = True

c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# The grading kernel starts with a guard (medai_lessons/grading/guard.py, KERNEL_ARGUMENT there;
# tests keep the two identical): os._exit() in an answer then fails that cell instead of
# killing the kernel, which would leave the whole notebook without a grade.
c.Execute.extra_arguments = [
    "--HistoryManager.hist_file=:memory:",
    "--IPKernelApp.exec_lines=['import medai_lessons.grading.guard as _guard; "
    "_guard.install(); del _guard']",
]

# A test cell deleted from a submission is put back (with a note saying so) and graded, so
# that deleting a test neither hides a failure nor costs a right answer its points.
c.OverwriteCells.add_missing_cells = True

# Two of nbgrader's autograde steps are replaced, each in its place in nbgrader's list and with
# the settings above (c.Execute.*, c.LimitOutput.* apply to them):
# - Execute: the chapters' applied cells, tagged "not-autograded", earn no points and feed no
#   test, so they are left out (with a note in their output); graded and answer cells always
#   run, whatever their tags (medai_lessons/grading/execute.py);
# - LimitOutput: nbgrader limits printed output by lines; the course also limits it by
#   characters, so that an answer printing megabytes on one line does not carry them into the
#   autograded notebook and the feedback (medai_lessons/grading/limits.py).
from nbgrader.converters.autograde import Autograde  # noqa: E402

from medai_lessons.grading.execute import ExecuteGradedWork  # noqa: E402
from medai_lessons.grading.limits import LimitOutputSize  # noqa: E402

_REPLACED = {"Execute": ExecuteGradedWork, "LimitOutput": LimitOutputSize}
c.Autograde.autograde_preprocessors = [
    _REPLACED.get(step.__name__, step)
    for step in Autograde.class_traits()["autograde_preprocessors"].default()
]

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

# Autograding runs each submission's kernel in a sandbox and decides every test outside it
# (medai_lessons/grading/execute.py, sandbox.py, remote.py): without a sandbox it refuses to
# run unless c.ExecuteGradedWork.sandbox = False (medai-course autograde --unsandboxed).
# Limits of a grading kernel (bytes, seconds, processes); Execute.timeout above is per cell.
c.ExecuteGradedWork.memory_limit = 6 * 1024**3
c.ExecuteGradedWork.cpu_limit = 900
c.ExecuteGradedWork.process_limit = 256
c.ExecuteGradedWork.wall_limit = 1200
# After an interrupt, a busy machine may take a while to answer: wait for it instead of
# failing the whole notebook (nbclient's default wait is 4 s).
c.ExecuteGradedWork.iopub_timeout = 60
c.ExecuteGradedWork.raise_on_iopub_timeout = False

# Steps of nbgrader's autograde replaced or added, each in its place in nbgrader's lists and
# with the settings above:
# - RestoreStructure (first sanitizing step): every cell's nbgrader metadata comes from the
#   gradebook, so a submission cannot change schema versions, grade ids, points or cell
#   types, or add grade cells (medai_lessons/grading/sanitize.py);
# - Execute: the sandboxed kernel; test cells run in nbgrader's process against it; the
#   chapters' applied cells, tagged "not-autograded", earn no points and feed no test, so they
#   are left out (with a note in their output); graded and answer cells always run, whatever
#   their tags (medai_lessons/grading/execute.py);
# - LimitOutput: nbgrader limits printed output by lines; the course also limits every output
#   by size (text, images, JSON), so that an answer printing megabytes does not carry them
#   into the autograded notebook and the feedback (medai_lessons/grading/limits.py).
# Feedback never shows hidden tests: ClearHiddenTests runs before it is written.
from nbgrader.converters.autograde import Autograde  # noqa: E402
from nbgrader.converters.generate_feedback import GenerateFeedback  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests  # noqa: E402

from medai_lessons.grading.execute import ExecuteGradedWork  # noqa: E402
from medai_lessons.grading.limits import LimitOutputSize  # noqa: E402
from medai_lessons.grading.sanitize import RestoreStructure  # noqa: E402

_REPLACED = {"Execute": ExecuteGradedWork, "LimitOutput": LimitOutputSize}
c.Autograde.sanitize_preprocessors = [
    RestoreStructure,
    *Autograde.class_traits()["sanitize_preprocessors"].default(),
]
c.Autograde.autograde_preprocessors = [
    _REPLACED.get(step.__name__, step)
    for step in Autograde.class_traits()["autograde_preprocessors"].default()
]
c.GenerateFeedback.preprocessors = [
    ClearHiddenTests,
    *GenerateFeedback.class_traits()["preprocessors"].default(),
]

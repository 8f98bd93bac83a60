"""MedAI Lessons: the helper package of a Jupyter course on neural networks for medicine.

Chapters live in ``course/source/<chapter>/``; this package holds what their cells would
otherwise paste in: reference implementations (:mod:`medai_lessons.nn`), the checkers that
test cells call (:mod:`medai_lessons.grading`), plots (:mod:`medai_lessons.plotting`), the
notebook set-up call (:mod:`medai_lessons.notebook`) and the CPU/GPU report
(:mod:`medai_lessons.device`).

Importing this package is cheap: TensorFlow is only imported by the functions that need it.
"""

__version__ = "0.1.0"

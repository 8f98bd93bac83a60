"""``python -m medai_lessons.data list|fetch|verify|where`` (see :mod:`.cli`)."""

import sys

from medai_lessons.data.cli import main

if __name__ == "__main__":
    sys.exit(main())

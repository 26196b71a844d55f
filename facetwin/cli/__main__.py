"""``python -m facetwin.cli``. Guarded: a process that multiprocessing spawns re-imports
the main module, and must not run the command again."""

import sys

from facetwin.cli import main

if __name__ == "__main__":
    sys.exit(main())

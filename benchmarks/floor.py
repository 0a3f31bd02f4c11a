"""``python benchmarks/floor.py ...`` from a clone: the command line of ``ipc_explorer.floor``
(the floor now lives in the package; see benchmarks/README.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ipc_explorer.floor.__main__ import main  # noqa: E402

sys.exit(main())

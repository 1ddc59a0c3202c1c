"""``python -m rlviz ...``: see ``rlviz.cli``."""

import sys

from .cli import main

sys.exit(main())

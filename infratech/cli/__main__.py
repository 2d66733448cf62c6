"""``python -m infratech.cli plan …``: the ``infratech`` command without its console script."""

import sys

from .app import main

sys.exit(main())

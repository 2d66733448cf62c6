"""``python -m infratech.cli.submit submit train JOB.yaml --dry-run`` (and ``jobs …``)."""

import sys

from .cli import main

sys.exit(main())

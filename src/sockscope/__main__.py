"""``python -m sockscope``: the ss-compatible command."""

import sys

from .cli import main

sys.exit(main())

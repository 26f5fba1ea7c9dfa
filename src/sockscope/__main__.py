"""``python -m sockscope``: the ss-compatible command."""

import sys

from sockscope.cli.command import main

sys.exit(main())

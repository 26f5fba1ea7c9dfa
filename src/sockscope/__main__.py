"""``python -m sockscope``: the ss-compatible command."""

import gc

# as in scripts/sockscope-run: no collector passes over the objects of the imports
gc.disable()
from sockscope.cli.command import leave, main  # noqa: E402

gc.freeze()
gc.enable()
leave(main())

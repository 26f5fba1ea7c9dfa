"""``python -m sockscope``: the ss-compatible command."""

import gc

# as in scripts/sockscope-run: no collector passes over the objects of the imports
try:
    gc.disable()
    from sockscope.cli.command import launch

    launch()
except KeyboardInterrupt:
    # Ctrl-C while the modules load: ss's death by SIGINT, not a traceback (main()
    # handles it once its own try is entered)
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(130) from None

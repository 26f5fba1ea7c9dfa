"""``python -m sockscope``: the ss-compatible command."""

try:
    import _signal  # type: ignore[import-not-found]  # the C module (signal.py builds enums)
    import posix

    def _sigint(_signum: int, _frame: object) -> None:
        # while the modules load, Ctrl-C ends the process at once by SIGINT, as it ends
        # ss: a KeyboardInterrupt raised in a callback of importlib's (a module lock's
        # weakref) would be "Exception ignored" and the listing would run on
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        posix.kill(posix.getpid(), _signal.SIGINT)

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:  # not nohup's
        _signal.signal(_signal.SIGINT, _sigint)  # launch() puts Python's back for main()

    import gc

    # as in scripts/sockscope-run: no collector passes over the objects of the imports
    gc.disable()
    from sockscope.cli.command import launch

    launch()
except (MemoryError, OSError, ImportError, SystemError) as e:
    # RLIMIT_AS (ulimit -v) reached while the modules load (importlib's directory
    # listing fails with ENOMEM, dlopen cannot map a C module: see
    # sockscope.errors.memory_error): the one line main() gives once its own try is
    # entered, not a traceback; and no finalization, which out of memory prints more
    import posix

    from sockscope.errors import memory_error  # (loaded: runpy imported the package)

    if not memory_error(e):
        raise
    try:
        posix.write(2, b"sockscope: Cannot allocate memory\n")
    except OSError:
        pass
    posix._exit(1)
except KeyboardInterrupt:
    # Ctrl-C while the modules load: ss's death by SIGINT, not a traceback (main()
    # handles it once its own try is entered)
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(130) from None

"""The exit codes of the ``bananas`` command (the package docstring says what each means)."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
#: Killed by Ctrl-C (SIGINT), as a shell reports it: 128 + 2.
EXIT_INTERRUPTED = 130
#: The reader of stdout went away (``bananas queues | head``), as a shell reports SIGPIPE.
EXIT_BROKEN_PIPE = 141

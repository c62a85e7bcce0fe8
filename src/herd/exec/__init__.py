"""Local processes: what runs a task on this machine.

``base``       the :class:`~herd.exec.base.Executor` protocol and its events (Launch, Exited, ...)
``executor``   :class:`~herd.exec.executor.LocalExecutor`: start, reap, watchdog, shutdown
``spawn``      ``posix_spawn`` in a new session, PATH lookup, plain commands without the shell
``signals``    the wakeup socket, the child subreaper flag, the peek at exited children
``leftovers``  signalling a task's tree; stopping what a killed herd left running
``capture``    task output through pipes, log files created at the first byte
``monitor``    sampling of process trees, the memory watchdog's figures
``machine``    this machine's cores, memory and GPUs as :class:`~herd.core.model.Limits`
``emit``       ``herd emit``: a running task records user data and events
"""

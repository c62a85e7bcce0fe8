"""Local processes: what runs a task on this machine.

``executor``  spawn, reap (SIGCHLD), kill trees, timeouts, leftovers
``capture``   task output through pipes, log files created at the first byte
``monitor``   sampling of process trees, the memory watchdog
``machine``   this machine's cores, memory and GPUs as :class:`~herd.core.model.Limits`
``emit``      ``herd emit``: a running task records user data and events
"""

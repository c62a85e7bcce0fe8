"""Planning a run: which tasks run, which are skipped, and why.

``planner``   fingerprints and reasons (run / skip, and why)
``files``     stats and content digests of task files, a million at a time
``commands``  ``${VAR}`` expansion, command and env digests
``clean``     temporary files a run removes, and ``herd clean``
"""

"""Planning a run: which tasks run, which are skipped, and why.

``planner``  fingerprints and reasons (run / skip), file stats, command expansion
``clean``    temporary files a run removes, and ``herd clean``
"""

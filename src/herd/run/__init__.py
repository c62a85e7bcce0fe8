"""Drivers of the one scheduler.

``submit``    validate, plan against the store and record the plan: what every run does first
``local``     ``herd run``: real processes, the store, the run lock
``attempts``  an attempt's environment, directory, log files and record; what it leaves
``journal``   the run's changes committed in batches of whole loop turns (group commit)
``simulate``  ``herd simulate``: the same scheduler on a virtual clock
``progress``  the live display and plain progress lines
"""

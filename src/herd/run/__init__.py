"""Drivers of the one scheduler.

``local``     ``herd run``: real processes, the store, the run lock
``simulate``  ``herd simulate``: the same scheduler on a virtual clock
``progress``  the live display and plain progress lines
"""

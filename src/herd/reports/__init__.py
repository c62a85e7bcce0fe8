"""Reports over a finished (or running) run, read from the store alone.

``stats``    ``herd stats``: counts, retries, wall and CPU time, a table per label
             (:mod:`herd.reports.stats`, like pegasus-statistics)
``analyze``  ``herd analyze``: each failed task with its logs, kill reason and rerun command
             (:mod:`herd.reports.analyze`, like pegasus-analyzer)
``plot``     ``herd plot``: a Gantt chart with CPU and memory over time, PNG/SVG/HTML
             (:mod:`herd.reports.plot`; needs matplotlib, imported only when drawing)

Import from the modules (``from herd.reports.stats import stats``): the package re-exports
nothing, so that the functions ``stats`` and ``analyze`` never shadow the modules of the same
name. These are views: they import the store, the model and the formats (to read labels from a
spec), never the runner. ``docs/reports.md`` shows each report on a real run.
"""

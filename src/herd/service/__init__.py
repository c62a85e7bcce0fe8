"""The operations every front end shares: the CLI, the Python API, and next the HTTP server and
the workers all call these functions, never the store, the graph or the planner themselves
(``tests/unit/test_layers.py`` holds the CLI and the API to it).

=====================  ==========================================================================
``state``              opening what a working directory remembers: :func:`~state.existing_store`
                       (read only, None where herd never ran), :func:`~state.reading` (the store
                       and one workflow in it, or a UsageError saying what to do),
                       :func:`~state.changing` (the same, writable, under the run lock)
``runs``               a spec and its runs: ``load``, ``load_built``, ``limits``, ``validate``,
                       ``tasks``, ``script``, ``plan`` (what would run and why, nothing written),
                       ``submit`` (validate, plan and record the plan in the store), ``run``
                       (submit, then drive the scheduler over real processes), ``simulate``,
                       ``slurm_executor`` (each task a Slurm job instead of a local process)
``changes``            ``reset``, ``forget``, ``clean``, ``emit`` / ``emit_event``
``views``              ``status``, ``why``, ``provenance``, ``graph``, ``stats``, ``analyze``,
                       ``plot`` / ``plot_schedule``, ``export``, ``export_dagman``, ``convert``
=====================  ==========================================================================

Front ends import the modules (``from herd.service import runs``) and render what the functions
return; arguments and results are typed values (paths, names, :class:`~herd.core.model.Workflow`,
:class:`~herd.run.submit.RunOptions`, report dataclasses), never a parsed command line.

Workers on many machines (``herd submit``, then claim / heartbeat / finish) build on
:func:`runs.submit`: it is :func:`herd.run.submit.prepare` (validate, read the store, plan) and
:func:`herd.run.submit.record` (write the workflow and its plan) under the store's lock, which
``herd run`` also uses before it drives the tasks itself. A shared store marks the tasks to run
ready in ``record``; claim / heartbeat / finish belong here beside ``submit``, over the store's
intention-named methods.
"""

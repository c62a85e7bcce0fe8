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
                       ``run`` (validate, plan and record the plan, then drive the scheduler over
                       real processes), ``simulate``, ``slurm_executor`` (each task a Slurm job)
``workers``            many machines: ``submit`` (plan into the store's queue and return),
                       ``resources``, ``work`` (one worker claiming and running tasks, on a store
                       or from a herd server), ``reap``
``dispatch``           the server's side of HTTP workers: :class:`~dispatch.Dispatcher`
``changes``            ``reset``, ``forget``, ``clean``, ``emit`` / ``emit_event``
``slurm``              workers in Slurm allocations: ``request``, ``submit`` (the workflow to the
                       shared store, allocations sbatch'ed), ``dry_run``, ``status``
``campaigns``          campaigns (``herd campaign``): ``create``, ``listing``, ``add_runs``,
                       ``watch``, ``close``, ``status`` (the runs x tasks matrix), ``rerun``,
                       ``invalidate``, ``influx`` (InfluxDB line protocol)
``metrics``            the store as Prometheus gauges (``/metrics`` on ``herd serve``)
``views``              ``status``, ``why``, ``provenance``, ``graph``, ``stats``, ``analyze``,
                       ``plot`` / ``plot_schedule``, ``export``, ``export_dagman``, ``convert``
``hub``                a long-lived front end (``herd serve``): :class:`~hub.Hub` keeps the store
                       open (a pool of connections) and answers the HTTP API's reads and writes
``tokens``             ``herd token``: ``create``, ``listed``, ``revoke``; ``check`` (a request's)
``remote``             ``herd status|stats|analyze --server URL``: the API's answers decoded
                       into the same results as the local views
=====================  ==========================================================================

Front ends import the modules (``from herd.service import runs``) and render what the functions
return; arguments and results are typed values (paths, names, :class:`~herd.core.model.Workflow`,
:class:`~herd.run.submit.RunOptions`, report dataclasses), never a parsed command line.

A run and a submission share their first half, :func:`herd.run.submit.prepare` (validate, read the
store, plan) and :func:`herd.run.submit.record` (write the workflow and the plan's skips): ``herd
run`` then drives the tasks itself (:mod:`herd.run.local`), ``herd submit`` queues them for workers
(:mod:`herd.run.enqueue`), which claim, heartbeat and finish through the store's intention-named
methods (:mod:`herd.run.worker`).
"""

"""The pure core: typed model, task graph, scheduler, the garbage-collector pause.

``model``      Workflow, Task, Limits, TaskState: typed frozen data
``graph``      validation, the integer DAG (CSR arrays), selection, ranks
``scheduler``  events in, decisions out
``events``     the events a driver feeds the scheduler and the decisions it returns
``bulk``       building a million objects with the cyclic garbage collector paused

Nothing here touches disk, clock, processes or network (``tests/unit/test_layers.py``).
"""

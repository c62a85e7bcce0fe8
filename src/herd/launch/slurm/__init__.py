"""Slurm: herd's tasks as Slurm jobs (``herd run --executor slurm``).

``client.py`` runs Slurm's commands (sbatch, squeue, scancel) and turns their failures into
:class:`~herd.errors.BatchError`; ``jobs.py`` writes the batch scripts (plain text, one per job);
``executor.py`` is the executor the runner drives, behind the same narrow interface as the local
one (start, wait, kill, shutdown).
"""

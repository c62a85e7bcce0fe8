"""Getting work onto other machines' batch systems.

``dagman``  ``herd export --to dagman``: an HTCondor DAGMan file, submit descriptions and wrappers
"""

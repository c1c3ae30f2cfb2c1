"""The ``tidings worker`` host: a supervisor keeping worker processes, their recycling, logs and metrics endpoint.

Nothing in the pipeline imports this package: it runs the pipeline, in processes of its own.
"""

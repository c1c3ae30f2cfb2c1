"""The operator commands of ``tidings``: one module per report or action, dispatched by :mod:`jobs.commands.cli`.

Nothing in the pipeline imports this package.
"""

"""Errors raised by ``jobs``.

The tree::

    JobsError
     +-- ConfigurationError      a bad or missing setting; names the TIDINGS_* variable or argument
     +-- TransitionNotFound      a message names a transition that does not exist
     +-- DeliveryNotFound        a message names a delivery that does not exist
"""

from __future__ import annotations


class JobsError(Exception):
    """Base class for every error raised by ``jobs``."""


class ConfigurationError(JobsError):
    """A setting is invalid; the message names the environment variable or argument."""


class TransitionNotFound(JobsError):
    """No transition has the given id."""


class DeliveryNotFound(JobsError):
    """No delivery has the given id."""

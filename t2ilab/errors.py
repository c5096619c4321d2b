"""Errors the command line prints as one line (exit code 2) instead of a traceback."""


class UsageError(Exception):
    """A bad command line or a request that cannot be met: printed as one line, exit code 2."""

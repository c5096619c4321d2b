"""Errors the command line prints as one line (exit code 2) instead of a traceback, and checks that raise them
before any work starts."""


class UsageError(Exception):
    """A bad command line or a request that cannot be met: printed as one line, exit code 2."""


def check_writable_folder(folder, what: str) -> None:
    """`folder` exists or can be made, and a file can be written in it; else one line naming it and why."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"cannot use {folder} for {what}: {err.strerror or err}") from None


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2 ** 32:
        raise UsageError(f"--seed must be between 0 and 2**32 - 1, got {seed}")


def check_device(device: str) -> None:
    """A one-line error before anything is loaded, for a device this machine does not have."""
    import torch

    try:
        kind = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if kind.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (kind.index or 0) >= count:
            raise UsageError(f"device {device!r} is not available here ({count} CUDA device(s)); use --device cpu")
    elif kind.type != "cpu":
        raise UsageError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")

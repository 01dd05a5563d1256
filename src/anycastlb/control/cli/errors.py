"""Why a command failed, with what to change; ``session`` prints the message and exits with the code."""

__all__ = ["CommandError", "InputError", "RefusedError", "UnreachableError"]


class CommandError(Exception):
    """The command could not do what it was asked (exit status 1)."""

    exit_code = 1


class InputError(CommandError):
    """The input is wrong (a spec file, an option) and no request was made: exit status 2, as for
    a usage error."""

    exit_code = 2


class UnreachableError(CommandError):
    """No answer from the control plane: refused, timed out, or not HTTP."""


class RefusedError(CommandError):
    """The control plane answered 4xx or 5xx; the message is its ``detail``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

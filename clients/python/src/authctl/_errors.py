"""Exceptions: one per kind of failure, mirroring the exit codes of the `authctl` CLI.

Messages are the agent's (they say what failed and what to do) and never contain a token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import grpc


class AuthctlError(Exception):
    """Any failure talking to the agent. ``exit_code`` is what the CLI would exit with."""

    exit_code = 1

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.message = message
        #: The gRPC status code when the agent answered with an error, else ``None``.
        self.code = code


class InvalidArgument(AuthctlError):
    """The request was malformed (``INVALID_ARGUMENT``)."""

    exit_code = 2


class NotRunning(AuthctlError):
    """No agent answers on the socket: start it with ``authctl agent start``."""

    exit_code = 3


class LoginRequired(AuthctlError):
    """The account needs ``authctl login`` (``FAILED_PRECONDITION``); the message names it."""

    exit_code = 4


class NoSuchAccount(AuthctlError):
    """No such account or provider (``NOT_FOUND``)."""

    exit_code = 5


class ProviderUnavailable(AuthctlError):
    """The identity provider is unreachable or failing (``UNAVAILABLE``); retrying may help."""

    exit_code = 6


class LoginFailed(AuthctlError):
    """An interactive login did not complete (``DEADLINE_EXCEEDED``, ``ABORTED``)."""

    exit_code = 7


class Denied(AuthctlError):
    """The agent refused: ``PERMISSION_DENIED``, or a socket of (or an agent run by) another user."""

    exit_code = 8


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: LoginRequired,
    grpc.StatusCode.NOT_FOUND: NoSuchAccount,
    grpc.StatusCode.UNAVAILABLE: ProviderUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: LoginFailed,
    grpc.StatusCode.ABORTED: LoginFailed,
    grpc.StatusCode.PERMISSION_DENIED: Denied,
    grpc.StatusCode.UNAUTHENTICATED: Denied,
}

# grpcio's words for a connection that failed: its own status, not one the agent sent (the agent's
# messages are sentences about accounts and providers, and may quote a provider's connection error).
_CONNECT_FAILED = "failed to connect to all addresses"
_HUNG_UP = ("socket closed", "connection reset", "broken pipe", "end of tcp stream", "recvmsg")


def from_rpc_error(error: grpc.RpcError, socket: Path) -> AuthctlError:
    """The exception for a failed call (``error`` is also a ``grpc.Call``)."""
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    lowered = details.lower()
    if code == grpc.StatusCode.UNAVAILABLE:
        if lowered.startswith(_CONNECT_FAILED):
            if "permission denied" in lowered:
                return Denied(
                    f"permission denied on the agent's socket {socket}; the agent admits only "
                    "its own user"
                )
            if any(m in lowered for m in _HUNG_UP):
                # Something accepted the connection, then hung up: an agent refusing our uid.
                return Denied(
                    f"the agent at {socket} closed the connection; it admits only its own user "
                    "(run this program as the user who started the agent)"
                )
            return NotRunning(
                f"the agent is not running (no answer on {socket}); "
                "start it with `authctl agent start`"
            )
        if lowered.startswith(_HUNG_UP):
            return NotRunning(f"the agent at {socket} closed the connection during the call")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and details == "Deadline Exceeded":
        # grpcio's own deadline (the call's `timeout`), not a login that timed out at the agent.
        return AuthctlError(f"the agent at {socket} did not answer in time", code)
    return _BY_CODE.get(code, AuthctlError)(details, code)

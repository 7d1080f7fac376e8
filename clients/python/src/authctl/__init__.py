"""Python client of ``authctl-agent``, the per-user OAuth/OIDC credential agent.

>>> import authctl                                        # doctest: +SKIP
>>> agent = authctl.Agent()                               # finds the socket as the CLI does
>>> headers = {"Authorization": agent.token("corp").authorization}

Errors are exceptions that mirror the CLI's exit codes (`LoginRequired`, `NoSuchAccount`, ...,
all `AuthctlError`). `Agent.fresh_token` keeps a token fresh for long-running programs;
``authctl.requests.AgentAuth`` and ``authctl.httpx.AgentAuth`` authenticate HTTP requests.
"""

from ._agent import (
    DEFAULT_TIMEOUT,
    Account,
    AccountState,
    Agent,
    EventKind,
    FreshToken,
    Token,
    WatchEvent,
    WatchStream,
)
from ._errors import (
    AuthctlError,
    Denied,
    InvalidArgument,
    LoginFailed,
    LoginRequired,
    NoSuchAccount,
    NotRunning,
    ProviderUnavailable,
)
from ._paths import SOCKET_ENV, socket_path

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "SOCKET_ENV",
    "Account",
    "AccountState",
    "Agent",
    "AuthctlError",
    "Denied",
    "EventKind",
    "FreshToken",
    "InvalidArgument",
    "LoginFailed",
    "LoginRequired",
    "NoSuchAccount",
    "NotRunning",
    "ProviderUnavailable",
    "Token",
    "WatchEvent",
    "WatchStream",
    "socket_path",
]

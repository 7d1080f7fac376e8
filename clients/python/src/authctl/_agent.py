"""The client: `Agent`, the values it returns, and `FreshToken`."""

from __future__ import annotations

import enum
import math
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import grpc

from . import _proto
from ._errors import AuthctlError, NotRunning, from_rpc_error
from ._paths import socket_path

#: How long a call waits for the agent unless told otherwise (a refresh at a slow provider
#: included). Interactive calls wait for the user instead: the agent's login timeout bounds them.
DEFAULT_TIMEOUT = 60.0

_UNSET: Any = object()
Seconds = Union[int, float, timedelta]


def _utc(seconds: int) -> Optional[datetime]:
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds > 0 else None


@dataclass(frozen=True)
class Token:
    """An access token. ``access_token`` and ``id_token`` are secrets: left out of ``repr``."""

    access_token: str = field(repr=False)
    token_type: str
    #: When it expires (UTC), or ``None`` when the provider did not say.
    expires_at: Optional[datetime]
    scopes: tuple[str, ...]
    account: str
    id_token: Optional[str] = field(default=None, repr=False)
    #: Why the token may not meet what was asked (e.g. ``min_ttl`` above what the provider issues).
    note: Optional[str] = None

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value: ``Bearer <token>``."""
        return f"Bearer {self.access_token}"

    def expires_in(self) -> Optional[float]:
        """Seconds until expiry (negative once expired), or ``None`` when unknown."""
        if self.expires_at is None:
            return None
        return (self.expires_at - datetime.now(timezone.utc)).total_seconds()

    @classmethod
    def _from_pb(cls, t: Any) -> Token:
        return cls(
            access_token=t.access_token,
            token_type=t.token_type,
            expires_at=_utc(t.expires_at),
            scopes=tuple(t.scopes),
            account=t.account,
            id_token=t.id_token if t.HasField("id_token") else None,
            note=t.note if t.HasField("note") else None,
        )


class AccountState(enum.Enum):
    """Whether an account can be served tokens."""

    UNSPECIFIED = "unspecified"
    #: A refresh token is held; tokens can be served.
    READY = "ready"
    #: ``authctl login`` is needed.
    LOGIN_REQUIRED = "login_required"
    #: The last refresh failed transiently; the agent keeps retrying.
    DEGRADED = "degraded"


@dataclass(frozen=True)
class Account:
    """One login at a provider, as ``authctl status`` shows it."""

    name: str
    provider: str
    subject: str
    display_name: str
    scopes: tuple[str, ...]
    state: AccountState
    #: Expiry of the cached access token, or ``None`` when none is cached.
    access_token_expires_at: Optional[datetime]
    last_error: str
    has_refresh_token: bool

    @classmethod
    def _from_pb(cls, a: Any) -> Account:
        state = _proto.AccountState.values_by_number[a.state].name
        return cls(
            name=a.name,
            provider=a.provider,
            subject=a.subject,
            display_name=a.display_name,
            scopes=tuple(a.scopes),
            state=AccountState(state.removeprefix("ACCOUNT_STATE_").lower()),
            access_token_expires_at=_utc(a.access_token_expires_at),
            last_error=a.last_error,
            has_refresh_token=a.has_refresh_token,
        )


class EventKind(enum.Enum):
    """What a `WatchEvent` reports."""

    UNSPECIFIED = "unspecified"
    #: A new access token was obtained.
    REFRESHED = "refreshed"
    #: The refresh token was rejected: ``authctl login`` is needed.
    LOGIN_REQUIRED = "login_required"
    #: The account was logged out.
    REMOVED = "removed"
    #: A login completed.
    LOGGED_IN = "logged_in"
    #: A refresh failed transiently; the agent retries.
    REFRESH_FAILED = "refresh_failed"


@dataclass(frozen=True)
class WatchEvent:
    """An account event, as `Agent.watch` streams them."""

    account: str
    kind: EventKind
    expires_at: Optional[datetime]
    scopes: tuple[str, ...]
    resource: str
    message: str

    @classmethod
    def _from_pb(cls, e: Any) -> WatchEvent:
        kind = _proto.WatchEventKind.values_by_number[e.kind].name
        return cls(
            account=e.account,
            kind=EventKind(kind.removeprefix("WATCH_EVENT_KIND_").lower()),
            expires_at=_utc(e.expires_at),
            scopes=tuple(e.scopes),
            resource=e.resource,
            message=e.message,
        )


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


def _seconds(value: Seconds) -> int:
    s = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if s < 0:
        raise ValueError("min_ttl must not be negative")
    return math.ceil(s)


class Agent:
    """A connection to ``authctl-agent`` over its Unix socket. Thread-safe; cheap to keep.

    ``socket`` defaults to what :func:`authctl.socket_path` finds, as the CLI does. The
    connection is made on the first call (and made again after the agent restarts).

    >>> agent = Agent()                                   # doctest: +SKIP
    >>> agent.token("corp").authorization                 # doctest: +SKIP
    'Bearer eyJ...'
    """

    def __init__(
        self,
        socket: Optional[Union[str, os.PathLike[str]]] = None,
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
    ) -> None:
        if socket is None:
            found = socket_path()
            if found is None:
                raise NotRunning("no socket path: set AUTHCTL_SOCK or XDG_RUNTIME_DIR")
            socket = found
        self._socket = Path(socket)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._channel: Optional[grpc.Channel] = None
        self._methods: dict[str, Callable[..., Any]] = {}

    @property
    def socket(self) -> Path:
        """The socket this client talks to."""
        return self._socket

    def __repr__(self) -> str:
        return f"Agent(socket={str(self._socket)!r})"

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection (a later call opens a new one)."""
        with self._lock:
            channel, self._channel = self._channel, None
            self._methods = {}
        if channel is not None:
            channel.close()

    def _call(self, kind: str, name: str, response: Any) -> Callable[..., Any]:
        with self._lock:
            if self._channel is None:
                # No channel options: the agent accepts grpcio's default :authority (the
                # percent-encoded socket path).
                self._channel = grpc.insecure_channel(f"unix:{self._socket}")
            call = self._methods.get(name)
            if call is None:
                call = getattr(self._channel, kind)(
                    _proto.method(name),
                    request_serializer=_serialize,
                    response_deserializer=response.FromString,
                )
                self._methods[name] = call
            return call

    def _failed(self, error: grpc.RpcError) -> AuthctlError:
        e = from_rpc_error(error, self._socket)
        if isinstance(e, NotRunning):
            # grpcio would keep a failed channel in reconnect backoff (up to minutes); start over
            # so that the next call finds an agent started in the meantime.
            self.close()
        return e

    def _unary(self, name: str, request: Any, response: Any, timeout: Optional[float]) -> Any:
        try:
            return self._call("unary_unary", name, response)(request, timeout=timeout)
        except grpc.RpcError as e:
            raise self._failed(e) from None

    def token(
        self,
        account: str,
        *,
        scopes: Sequence[str] = (),
        resource: str = "",
        min_ttl: Seconds = 0,
        interactive: bool = False,
        force_refresh: bool = False,
        timeout: Optional[float] = _UNSET,
    ) -> Token:
        """An access token for ``account`` (an account name, or a provider with one account).

        ``scopes``: a subset of the account's scopes (default: all of them). ``resource``: an
        RFC 8707 resource indicator. ``min_ttl``: seconds (or a ``timedelta``) the token must stay
        valid. ``interactive``: start a browser login if one is needed (concurrent callers join
        it). ``force_refresh``: refresh even if the cached token is still valid.

        Raises `LoginRequired`, `NoSuchAccount`, `ProviderUnavailable`, `NotRunning`, `Denied`,
        `LoginFailed` or another `AuthctlError`.
        """
        request = _proto.GetTokenRequest(
            account=account,
            scopes=list(scopes),
            resource=resource,
            min_ttl_seconds=_seconds(min_ttl),
            interactive=interactive,
            force_refresh=force_refresh,
        )
        if timeout is _UNSET:
            timeout = None if interactive else self._timeout
        return Token._from_pb(self._unary("GetToken", request, _proto.Token, timeout))

    def accounts(self) -> list[Account]:
        """Every account and its state."""
        reply = self._unary(
            "ListAccounts", _proto.ListAccountsRequest(), _proto.ListAccountsResponse, self._timeout
        )
        return [Account._from_pb(a) for a in reply.accounts]

    def watch(self, account: str = "") -> WatchStream:
        """Streams account events as they happen (``account`` empty: every account's).

        The agent has subscribed once this returns, so an event caused after it is seen.
        """
        call = self._call("unary_stream", "Watch", _proto.WatchEvent)(
            _proto.WatchRequest(account=account)
        )
        try:
            call.initial_metadata()
        except grpc.RpcError as e:
            raise self._failed(e) from None
        return WatchStream(call, self)

    def fresh_token(
        self,
        account: str,
        *,
        scopes: Sequence[str] = (),
        resource: str = "",
        min_ttl: Seconds = 0,
        interactive: bool = False,
    ) -> FreshToken:
        """A handle that always holds a fresh token, for long-running programs.

        It follows the agent's ``Watch`` events in the background and asks again when the token
        was refreshed or a minute before it expires (like the Rust client's ``fresh_token``).
        Raises as `token` when the first token cannot be had.
        """
        return FreshToken(
            self,
            dict(
                account=account,
                scopes=tuple(scopes),
                resource=resource,
                min_ttl=min_ttl,
                interactive=interactive,
            ),
        )


class WatchStream:
    """An iterator of `WatchEvent`; `close` (or leaving a ``with`` block) ends it."""

    def __init__(self, call: Any, agent: Agent) -> None:
        self._call = call
        self._agent = agent

    def __iter__(self) -> Iterator[WatchEvent]:
        return self

    def __next__(self) -> WatchEvent:
        try:
            return WatchEvent._from_pb(next(self._call))
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise self._agent._failed(e) from None

    def close(self) -> None:
        """Ends the stream; a blocked iteration stops."""
        self._call.cancel()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FreshToken:
    """A token kept fresh in the background; see `Agent.fresh_token`.

    Two daemon threads: one follows ``Watch`` (and subscribes again after the agent restarts),
    one asks for the token when an event says it changed or when it nears expiry. A failed ask
    keeps the last token and is kept in `last_error`.
    """

    #: Ask again this long before expiry even if no event arrives.
    EARLY = 60.0

    def __init__(self, agent: Agent, request: dict[str, Any]) -> None:
        self._agent = agent
        self._request = request
        self._cond = threading.Condition()
        self._version = 0
        self._closed = threading.Event()
        self._wake = threading.Event()
        self.last_error: Optional[AuthctlError] = None
        first = agent.token(**request)  # also resolves a provider name to its account
        account = first.account
        # Subscribed before the token is taken, so that no refresh after this returns is missed.
        try:
            self._stream: Optional[WatchStream] = agent.watch(account)
            self._token = agent.token(**request)
        except AuthctlError:
            self._stream = None
            self._token = first
        self._threads = [
            threading.Thread(target=self._follow, args=(account, self._stream), daemon=True),
            threading.Thread(target=self._refresh, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def __repr__(self) -> str:
        return f"FreshToken(account={self._token.account!r}, expires_at={self._token.expires_at})"

    def current(self) -> Token:
        """The freshest token known."""
        with self._cond:
            return self._token

    def wait_for_change(self, timeout: Optional[float] = None) -> Token:
        """Waits until a new token arrives and returns it; raises `TimeoutError` after ``timeout``."""
        with self._cond:
            seen = self._version
            if not self._cond.wait_for(lambda: self._version != seen, timeout):
                raise TimeoutError("no new token")
            return self._token

    def close(self) -> None:
        """Stops the background threads."""
        self._closed.set()
        self._wake.set()
        with self._cond:
            stream = self._stream
        if stream is not None:
            stream.close()

    def __enter__(self) -> FreshToken:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _follow(self, account: str, stream: Optional[WatchStream]) -> None:
        while not self._closed.is_set():
            try:
                if stream is None:
                    stream = self._agent.watch(account)
                    with self._cond:
                        self._stream = stream
                if self._closed.is_set():
                    stream.close()
                    return
                for event in stream:
                    if event.kind in (EventKind.REFRESHED, EventKind.LOGGED_IN):
                        self._wake.set()
            except AuthctlError:
                pass
            stream = None
            # The stream ended (the agent restarted, or is not running): subscribe again soon.
            self._closed.wait(1.0)

    def _refresh(self) -> None:
        while True:
            expires_in = self.current().expires_in()
            wait = 300.0 if expires_in is None else max(1.0, expires_in - self.EARLY)
            self._wake.wait(wait)
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                token = self._agent.token(**self._request)
            except AuthctlError as e:
                self.last_error = e
                self._closed.wait(1.0)
                continue
            self.last_error = None
            with self._cond:
                if token.access_token != self._token.access_token:
                    self._token = token
                    self._version += 1
                    self._cond.notify_all()

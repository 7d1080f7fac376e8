"""Authentication for `httpx <https://www.python-httpx.org>`_ from the agent.

>>> import httpx, authctl.httpx                           # doctest: +SKIP
>>> client = httpx.Client(auth=authctl.httpx.AgentAuth("corp"))
>>> client.get("https://api.example.com/me")
"""

from __future__ import annotations

from typing import AsyncGenerator, Generator, Optional, Sequence

import anyio.to_thread
import httpx

from ._agent import Agent, Seconds
from ._auth import _TokenSource

__all__ = ["AgentAuth"]


class AgentAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` for ``account``; on a 401 answer it asks the agent
    for a refreshed token and sends the request once more. Works with ``httpx.Client`` and
    ``httpx.AsyncClient`` (where the agent is asked from a worker thread).

    The token options are those of `authctl.Agent.token`. ``agent`` defaults to ``Agent()``.
    """

    # The body is read before sending, so that the retry can send it again.
    requires_request_body = True

    def __init__(
        self,
        account: str,
        *,
        agent: Optional[Agent] = None,
        scopes: Sequence[str] = (),
        resource: str = "",
        min_ttl: Seconds = 0,
        interactive: bool = False,
    ) -> None:
        self._source = _TokenSource(
            account,
            agent=agent,
            scopes=scopes,
            resource=resource,
            min_ttl=min_ttl,
            interactive=interactive,
        )

    def __repr__(self) -> str:
        return f"AgentAuth(account={self._source.account!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._source.token().authorization
        response = yield request
        if response.status_code == 401:
            token = self._source.token(force_refresh=True)
            request.headers["Authorization"] = token.authorization
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await anyio.to_thread.run_sync(self._source.token)
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code == 401:
            token = await anyio.to_thread.run_sync(lambda: self._source.token(force_refresh=True))
            request.headers["Authorization"] = token.authorization
            yield request

"""Authentication for `requests <https://requests.readthedocs.io>`_ from the agent.

>>> import requests, authctl.requests                     # doctest: +SKIP
>>> s = requests.Session()
>>> s.auth = authctl.requests.AgentAuth("corp")
>>> s.get("https://api.example.com/me")
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import requests
from requests.cookies import extract_cookies_to_jar

from ._agent import Agent, Seconds
from ._auth import _TokenSource

__all__ = ["AgentAuth"]


class AgentAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer <token>`` for ``account``; on a 401 answer it asks the agent
    for a refreshed token and sends the request once more.

    The token options are those of `authctl.Agent.token`. ``agent`` defaults to ``Agent()``.
    A request whose body cannot be sent twice (a generator) is not retried.
    """

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

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._source.token().authorization
        try:
            position: Optional[int] = r.body.tell()  # type: ignore[union-attr]
        except AttributeError:
            position = None
        # One state per request, shared with its retry (PreparedRequest.copy shares the hooks).
        hook = functools.partial(self._retry_on_401, state={"retried": False, "pos": position})
        r.register_hook("response", hook)  # type: ignore[no-untyped-call]
        return r

    def _retry_on_401(
        self, r: requests.Response, *, state: dict[str, Any], **kwargs: Any
    ) -> requests.Response:
        if r.status_code != 401 or state["retried"]:
            return r
        body = r.request.body
        if state["pos"] is not None:
            body.seek(state["pos"])  # type: ignore[union-attr]
        elif body is not None and not isinstance(body, (bytes, str)):
            return r  # a stream already consumed
        state["retried"] = True
        token = self._source.token(force_refresh=True)
        # Release the connection of the first answer before sending again.
        _ = r.content
        r.close()
        retry = r.request.copy()
        # Cookies the first answer set go along (as requests' own digest auth does).
        jar = retry._cookies  # type: ignore[attr-defined]
        extract_cookies_to_jar(jar, r.request, r.raw)  # type: ignore[no-untyped-call]
        retry.prepare_cookies(jar)
        retry.headers["Authorization"] = token.authorization
        answer: requests.Response = r.connection.send(retry, **kwargs)
        answer.history.append(r)
        answer.request = retry
        return answer

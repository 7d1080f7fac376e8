"""The `requests` and `httpx` auth classes, against a resource server that asks the test provider
whether each bearer token is live, and that can stop accepting one that has not expired (as after
a key rotation or a server-side logout): that token gets a 401."""

from __future__ import annotations

import asyncio
import http.server
import threading
from typing import Any, Iterator

import httpx
import pytest
import requests

import authctl
import authctl.httpx
import authctl.requests
from conftest import Idp, World


class ResourceServer:
    def __init__(self, idp: Idp) -> None:
        self.seen: list[tuple[int, bytes]] = []
        self.rejected: set[str] = set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                auth = self.headers.get("Authorization", "")
                live = (
                    auth.startswith("Bearer ")
                    and not self.path.endswith("?deny")
                    and auth[7:] not in outer.rejected
                    and idp.introspect(auth[7:])["active"]
                )
                status = 200 if live else 401
                outer.seen.append((status, body))
                self.send_response(status)
                if not live:
                    self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/api"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def api(world: World) -> Iterator[ResourceServer]:
    s = ResourceServer(world.idp)
    yield s
    s.close()


@pytest.fixture
def agent(world: World) -> authctl.Agent:
    return authctl.Agent(world.socket)


def reject_current(agent: authctl.Agent, api: ResourceServer) -> None:
    """The resource stops accepting the token the agent has cached, which is still unexpired."""
    api.rejected.add(agent.token("corp").access_token)


def test_requests(agent: authctl.Agent, api: ResourceServer, world: World) -> None:
    with requests.Session() as s:
        s.auth = authctl.requests.AgentAuth("corp", agent=agent)
        assert s.get(api.url).status_code == 200
        reject_current(agent, api)
        # A POST whose body must be sent again: 401, one forced refresh, the same body, 200.
        r = s.post(api.url, data=b"payload")
        assert r.status_code == 200
        assert [h.status_code for h in r.history] == [401]
        assert api.seen[-2:] == [(401, b"payload"), (200, b"payload")]
        assert "Bearer" not in repr(s.auth)


def test_requests_retries_only_once(agent: authctl.Agent, api: ResourceServer, world: World) -> None:
    # A resource that rejects every token: one forced refresh, one retry, then the 401 is the
    # caller's.
    before = world.idp.token_calls("refresh_token")
    r = requests.get(api.url + "?deny", auth=authctl.requests.AgentAuth("corp", agent=agent))
    assert r.status_code == 401
    assert [h.status_code for h in r.history] == [401]
    assert world.idp.token_calls("refresh_token") == before + 1


def test_httpx_sync(agent: authctl.Agent, api: ResourceServer, world: World) -> None:
    with httpx.Client(auth=authctl.httpx.AgentAuth("corp", agent=agent)) as client:
        assert client.get(api.url).status_code == 200
        reject_current(agent, api)
        r = client.post(api.url, content=b"payload")
        assert r.status_code == 200
        assert [h.status_code for h in r.history] == [401]
        assert api.seen[-2:] == [(401, b"payload"), (200, b"payload")]


def test_httpx_async(agent: authctl.Agent, api: ResourceServer, world: World) -> None:
    async def main() -> None:
        auth = authctl.httpx.AgentAuth("corp", agent=agent)
        async with httpx.AsyncClient(auth=auth) as client:
            assert (await client.get(api.url)).status_code == 200
            reject_current(agent, api)
            r = await client.get(api.url)
            assert r.status_code == 200
            assert [h.status_code for h in r.history] == [401]

    asyncio.run(main())


def test_errors_reach_the_caller(agent: authctl.Agent, api: ResourceServer) -> None:
    with pytest.raises(authctl.NoSuchAccount):
        requests.get(api.url, auth=authctl.requests.AgentAuth("nosuch", agent=agent))
    with pytest.raises(authctl.NoSuchAccount), httpx.Client() as client:
        client.get(api.url, auth=authctl.httpx.AgentAuth("nosuch", agent=agent))

"""`authctl.Agent` against the real agent and the test provider."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

import authctl
from conftest import World, use


@pytest.fixture
def agent(world: World, monkeypatch: pytest.MonkeyPatch) -> authctl.Agent:
    use(world, monkeypatch)
    return authctl.Agent()  # found through $XDG_RUNTIME_DIR, as the CLI finds it


def test_token_from_the_agent(agent: authctl.Agent, world: World) -> None:
    t = agent.token("corp")
    assert world.idp.introspect(t.access_token)["active"] is True
    assert t.account == "corp"
    assert t.token_type.lower() == "bearer"
    assert "openid" in t.scopes
    assert t.authorization == f"Bearer {t.access_token}"
    remaining = t.expires_in()
    assert remaining is not None and remaining > 60
    # The CLI serves the same cached token.
    assert world.authctl("token", "corp").stdout.strip() == t.access_token


def test_token_options(agent: authctl.Agent, world: World) -> None:
    first = agent.token("corp", min_ttl=timedelta(seconds=30))
    assert agent.token("corp", min_ttl=30).access_token == first.access_token, "a cache hit"
    narrow = agent.token("corp", scopes=["openid"])
    assert narrow.scopes == ("openid",)
    assert world.idp.introspect(narrow.access_token)["active"] is True
    forced = agent.token("corp", force_refresh=True)
    assert forced.access_token != first.access_token
    # Asking more than the provider issues: the freshest token, with a note saying so.
    capped = agent.token("corp", min_ttl=timedelta(days=1))
    assert capped.note and "freshest" in capped.note
    with pytest.raises(ValueError):
        agent.token("corp", min_ttl=-1)


def test_secrets_stay_out_of_reprs(agent: authctl.Agent) -> None:
    t = agent.token("corp")
    for text in (repr(t), str(t), f"{t}", repr(agent), repr(agent.fresh_token("corp"))):
        assert t.access_token not in text
        assert t.id_token is None or t.id_token not in text
    assert "access_token" not in repr(t)


def test_accounts(agent: authctl.Agent) -> None:
    [acc] = agent.accounts()
    assert acc.name == "corp" and acc.provider == "corp" and acc.subject == "alice"
    assert acc.state is authctl.AccountState.READY
    assert acc.has_refresh_token


def test_no_such_account(agent: authctl.Agent) -> None:
    with pytest.raises(authctl.NoSuchAccount) as e:
        agent.token("nosuch")
    assert e.value.exit_code == 5
    assert "nosuch" in str(e.value)


def test_not_running_then_started(own_world: World) -> None:
    agent = authctl.Agent(own_world.socket)
    agent.token("corp")
    own_world.authctl("agent", "stop")
    with pytest.raises(authctl.NotRunning) as e:
        agent.token("corp")
    assert e.value.exit_code == 3
    assert "authctl agent start" in str(e.value)
    # The same client works again once the agent is back (no reconnect backoff in the way).
    own_world.start()
    assert agent.token("corp").account == "corp"


def test_not_running_without_a_socket(tmp_path: Path) -> None:
    with pytest.raises(authctl.NotRunning):
        authctl.Agent(tmp_path / "agent.sock").accounts()


def test_login_required_names_the_command(own_world: World) -> None:
    agent = authctl.Agent(own_world.socket)
    own_world.idp.push_faults([{"invalid_grant": True, "grant_type": "refresh_token"}])
    with pytest.raises(authctl.LoginRequired) as e:
        agent.token("corp", force_refresh=True)
    assert e.value.exit_code == 4
    assert "authctl login corp" in str(e.value)
    assert [a.state for a in agent.accounts()] == [authctl.AccountState.LOGIN_REQUIRED]


def test_provider_unavailable(own_world: World) -> None:
    agent = authctl.Agent(own_world.socket)
    own_world.idp.push_faults([{"status": 503, "grant_type": "refresh_token"}])
    with pytest.raises(authctl.ProviderUnavailable) as e:
        agent.token("corp", force_refresh=True)
    assert e.value.exit_code == 6
    assert "503" in str(e.value)


def test_another_user_is_denied(world: World, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    # Let uid 65534 reach the socket; the agent must still refuse it (peer-credential check).
    for d in (world.root, world.root / "run", world.socket.parent):
        d.chmod(0o755)
    world.socket.chmod(0o666)
    try:
        script = (
            "import sys, authctl\n"
            f"try: authctl.Agent({str(world.socket)!r}).token('corp')\n"
            "except authctl.AuthctlError as e: print(type(e).__name__, e.exit_code); sys.exit(0)\n"
            "sys.exit('a token for another user')\n"
        )
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            cwd="/",
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["Denied", "8"], r.stdout
    finally:
        for d in (world.root / "run", world.socket.parent):
            d.chmod(0o700)
        world.socket.chmod(0o600)


def test_watch_sees_a_refresh(agent: authctl.Agent) -> None:
    with agent.watch("corp") as events:
        agent.token("corp", force_refresh=True)
        event = next(events)
    assert event.account == "corp"
    assert event.kind is authctl.EventKind.REFRESHED
    assert event.expires_at is not None


def test_fresh_token_follows_refreshes(agent: authctl.Agent) -> None:
    with agent.fresh_token("corp") as fresh:
        first = fresh.current()
        # Another program of the user forces a refresh: the handle picks it up by itself.
        other = authctl.Agent(agent.socket)
        threading.Thread(target=lambda: other.token("corp", force_refresh=True)).start()
        new = fresh.wait_for_change(timeout=15)
        assert new.access_token != first.access_token
        assert fresh.current() == new
        assert fresh.last_error is None
        with pytest.raises(TimeoutError):
            fresh.wait_for_change(timeout=0.2)

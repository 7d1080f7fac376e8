"""`authctl.socket_path` finds the socket exactly as the CLI does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import authctl
from conftest import bin_path


def cli_socket(env: dict[str, str]) -> str:
    """The socket the real CLI tries, read from its "not running" message."""
    r = subprocess.run(
        [str(bin_path("authctl")), "token", "corp"],
        env={**env, "PATH": "/usr/bin:/bin", "AUTHCTL_NO_AUTOSTART": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 3, r.stderr
    m = re.search(r"no answer on (.+?)\): ", r.stderr)
    assert m, r.stderr
    return m.group(1)


@pytest.mark.skipif(sys.platform != "linux", reason="compares with the CLI built here")
@pytest.mark.parametrize(
    "env",
    [
        {"AUTHCTL_SOCK": "/tmp/authctl-x/explicit.sock", "XDG_RUNTIME_DIR": "/run/user/42"},
        {"XDG_RUNTIME_DIR": "/run/user/42"},
        {"XDG_RUNTIME_DIR": "relative/run"},
        {"AUTHCTL_SOCK": "", "XDG_RUNTIME_DIR": "/run/user/42"},
        {"HOME": "/home/someone"},
        {"HOME": "/home/someone", "XDG_RUNTIME_DIR": ""},
        {"HOME": "/home/someone", "XDG_CACHE_HOME": "/var/cache/someone"},
        {"HOME": "/home/someone", "XDG_CACHE_HOME": "not/absolute"},
    ],
)
def test_the_same_socket_as_the_cli(env: dict[str, str]) -> None:
    assert str(authctl.socket_path(env)) == cli_socket(env)


def test_the_password_database_when_home_is_unset() -> None:
    import pwd

    home = pwd.getpwuid(os.getuid()).pw_dir
    assert authctl.socket_path({}) == Path(home) / ".cache" / "authctl" / "agent.sock"
    if sys.platform == "linux":
        assert cli_socket({}) == str(Path(home) / ".cache" / "authctl" / "agent.sock")


def test_macos_and_windows_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the `directories` crate gives there (the CLI cannot run here to compare).
    monkeypatch.setattr(sys, "platform", "darwin")
    assert authctl.socket_path({"HOME": "/Users/a", "XDG_CACHE_HOME": "/x"}) == Path(
        "/Users/a/Library/Caches/authctl/agent.sock"
    )
    monkeypatch.setattr(sys, "platform", "win32")
    assert authctl.socket_path({"LOCALAPPDATA": "/c/AppData/Local"}) == Path(
        "/c/AppData/Local/authctl/cache/agent.sock"
    )
    assert authctl.socket_path({"XDG_RUNTIME_DIR": "/r"}) == Path("/r/authctl/agent.sock")


def test_agent_uses_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTHCTL_SOCK", str(tmp_path / "a.sock"))
    assert authctl.Agent().socket == tmp_path / "a.sock"
    monkeypatch.delenv("AUTHCTL_SOCK")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert authctl.Agent().socket == tmp_path / "authctl" / "agent.sock"

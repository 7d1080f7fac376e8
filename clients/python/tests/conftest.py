"""Fixtures: the real test OpenID provider (``tests/idp``), the real agent and CLI (from
``target/debug``, or ``$AUTHCTL_BIN_DIR``), logged in through the scripted browser, each agent in a
hermetic set of directories.

Run from the repository with ``make test``, or after ``cargo build --workspace`` and
``make interop-deps``: ``target/interop/venv/bin/python -m pytest clients/python/tests``.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN_DIR = Path(os.environ.get("AUTHCTL_BIN_DIR", REPO / "target" / "debug"))


def bin_path(name: str) -> Path:
    p = BIN_DIR / name
    if not p.is_file():
        pytest.exit(f"{p} is missing: run `cargo build --workspace` first", returncode=2)
    return p


class Idp:
    """``node tests/idp/server.mjs`` on an OS-assigned port."""

    # As tests/src/idp.rs: a start takes well under a second, but a node process has been seen to
    # stall before its ready line (about 1 start in 30 on a busy machine) and never recover; such
    # a process is replaced rather than waited for.
    READY_TIMEOUT = 15.0
    START_ATTEMPTS = 4

    def __init__(self) -> None:
        if not (REPO / "tests" / "idp" / "node_modules" / "oidc-provider").is_dir():
            pytest.exit("the test IdP's packages are missing: run `npm ci` in tests/idp", 2)
        self._log = tempfile.NamedTemporaryFile(prefix="authctl-py-idp-", suffix=".log")
        for _ in range(self.START_ATTEMPTS):
            line = self._start_once()
            if line is not None:
                self.issuer: str = json.loads(line)["issuer"]
                return
        self._log.seek(0)
        raise RuntimeError(f"the test IdP did not start: {self._log.read().decode()}")

    def _start_once(self) -> Optional[str]:
        self._proc = subprocess.Popen(
            [os.environ.get("AUTHCTL_TEST_NODE", "node"), str(REPO / "tests/idp/server.mjs")],
            cwd=REPO,
            env={**os.environ, "IDP_PORT": "0"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        out = self._proc.stdout
        assert out is not None
        if select.select([out], [], [], self.READY_TIMEOUT)[0]:
            line = out.readline().decode()
            if line:
                # Keep draining, so that the provider never blocks on a full pipe.
                threading.Thread(target=out.read, daemon=True).start()
                return line
        self._proc.kill()
        self._proc.wait()
        return None

    def stop(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._log.close()

    def _post(self, path: str, body: bytes, content_type: str) -> Any:
        req = urllib.request.Request(
            self.issuer + path, data=body, headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            data = r.read()
        return json.loads(data) if data else None

    def token_calls(self, grant_type: str) -> int:
        """Token-endpoint requests seen for ``grant_type``."""
        with urllib.request.urlopen(self.issuer + "/__test/counters", timeout=10) as r:
            return int(json.loads(r.read())["token"].get(grant_type, 0))

    def introspect(self, token: str) -> dict[str, Any]:
        """The provider's view of a token (straight from its store)."""
        return self._post(  # type: ignore[no-any-return]
            "/__test/introspect", json.dumps({"token": token}).encode(), "application/json"
        )

    def push_faults(self, faults: list[dict[str, Any]]) -> None:
        """Faults for the next token-endpoint requests (see tests/idp/server.mjs)."""
        self._post("/__test/faults", json.dumps({"faults": faults}).encode(), "application/json")


class World:
    """One agent with private HOME, XDG directories and socket, and a cleared environment."""

    def __init__(self, idp: Idp) -> None:
        self.idp = idp
        self.root = Path(tempfile.mkdtemp(prefix="authctl-py-"))
        for d in ("home", "config", "data", "state", "run"):
            (self.root / d).mkdir()
        (self.root / "run").chmod(0o700)
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "BROWSER": str(REPO / "tests" / "browser" / "headless-browser"),
            "HEADLESS_BROWSER_LOG": str(self.root / "browser.log"),
            "AUTHCTL_NO_AUTOSTART": "1",
            "NO_COLOR": "1",
        }

    @property
    def socket(self) -> Path:
        return self.root / "run" / "authctl" / "agent.sock"

    def authctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [str(bin_path("authctl")), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"authctl {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
        return r

    def start(self) -> None:
        self.authctl("agent", "start")

    def login(self, account: str = "corp") -> None:
        self.authctl("login", "corp", "--account", account)

    def setup(self) -> World:
        """Agent started, the test provider added as ``corp``, account ``corp`` logged in."""
        self.start()
        self.authctl(
            "provider", "add", "corp",
            "--issuer", self.idp.issuer,
            "--client-id", "authctl-native",
            "--scope", "openid", "--scope", "email", "--scope", "offline_access",
        )  # fmt: skip
        self.login()
        return self

    def close(self) -> None:
        if self.socket.exists():
            self.authctl("agent", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def idp() -> Iterator[Idp]:
    bin_path("authctl-agent")
    p = Idp()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def world(idp: Idp) -> Iterator[World]:
    """A logged-in agent shared by a module's tests: use it only for what leaves it as it was."""
    w = World(idp).setup()
    yield w
    w.close()


@pytest.fixture
def own_world(idp: Idp) -> Iterator[World]:
    """A logged-in agent for one test, which may break it."""
    w = World(idp).setup()
    yield w
    w.close()


def use(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Points this process's environment at ``world``, as a program run by its user would be."""
    for k in ("AUTHCTL_SOCK", "XDG_CACHE_HOME"):
        monkeypatch.delenv(k, raising=False)
    for k in ("HOME", "XDG_RUNTIME_DIR"):
        monkeypatch.setenv(k, world.env[k])

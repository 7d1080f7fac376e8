"""Where the agent's socket is: the same rule as the CLI (`authctl_proto::socket_path`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Optional

SOCKET_ENV = "AUTHCTL_SOCK"


def socket_path(environ: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """The agent's socket, resolved exactly as the `authctl` CLI resolves it.

    ``$AUTHCTL_SOCK`` if set and not empty; else ``$XDG_RUNTIME_DIR/authctl/agent.sock``; else
    ``authctl/agent.sock`` in the per-user cache directory (the Rust ``directories`` crate's
    choice: ``$XDG_CACHE_HOME`` when absolute, else ``~/.cache``; ``~/Library/Caches`` on macOS;
    ``%LOCALAPPDATA%\\authctl\\cache`` on Windows).

    Returns ``None`` only when no home directory can be found.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(SOCKET_ENV)
    if explicit:
        return Path(explicit)
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "authctl" / "agent.sock"
    if sys.platform == "win32":
        local = env.get("LOCALAPPDATA")
        return Path(local) / "authctl" / "cache" / "agent.sock" if local else None
    home = _home(env)
    if home is None:
        return None
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "authctl" / "agent.sock"
    cache = env.get("XDG_CACHE_HOME")
    base = Path(cache) if cache and os.path.isabs(cache) else home / ".cache"
    return base / "authctl" / "agent.sock"


def _home(env: Mapping[str, str]) -> Optional[Path]:
    """``$HOME`` when set and not empty, else the password database (as ``dirs-sys`` does)."""
    home = env.get("HOME")
    if home:
        return Path(home)
    try:
        import pwd  # noqa: PLC0415 (not on Windows)

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        return None

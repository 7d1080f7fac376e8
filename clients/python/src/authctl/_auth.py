"""What the HTTP auth classes share: which token to ask for, and asking for it."""

from __future__ import annotations

from typing import Optional, Sequence

from ._agent import Agent, Seconds, Token


class _TokenSource:
    def __init__(
        self,
        account: str,
        *,
        agent: Optional[Agent],
        scopes: Sequence[str],
        resource: str,
        min_ttl: Seconds,
        interactive: bool,
    ) -> None:
        self.account = account
        self.agent = agent if agent is not None else Agent()
        self._scopes = tuple(scopes)
        self._resource = resource
        self._min_ttl = min_ttl
        self._interactive = interactive

    def token(self, *, force_refresh: bool = False) -> Token:
        return self.agent.token(
            self.account,
            scopes=self._scopes,
            resource=self._resource,
            min_ttl=self._min_ttl,
            interactive=self._interactive,
            force_refresh=force_refresh,
        )

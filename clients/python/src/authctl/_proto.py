"""The wire contract: message classes and method paths of ``authctl.agent.v1.Agent``.

The classes are built at import from ``agent.binpb``, the descriptor set that grpcio-tools' protoc
writes for ``proto/proto/authctl/agent/v1/agent.proto`` (``tests/test_stubs.py`` fails when the
two drift apart). protoc's Python gencode would do the same, but it refuses to load under a
protobuf runtime older than its generator; the descriptor works with any protobuf >= 4.22. They
live in a private pool, so an application's own stubs of the same file never clash with them.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_SERVICE = "authctl.agent.v1.Agent"


def _load() -> descriptor_pool.DescriptorPool:
    data = resources.files(__package__).joinpath("agent.binpb").read_bytes()
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    return pool


_POOL = _load()


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"authctl.agent.v1.{name}"))


def method(name: str) -> str:
    """The HTTP/2 path of one RPC of the agent, checked against the descriptor."""
    _POOL.FindMethodByName(f"{_SERVICE}.{name}")
    return f"/{_SERVICE}/{name}"


GetTokenRequest = _message("GetTokenRequest")
Token = _message("Token")
ListAccountsRequest = _message("ListAccountsRequest")
ListAccountsResponse = _message("ListAccountsResponse")
WatchRequest = _message("WatchRequest")
WatchEvent = _message("WatchEvent")
AccountState = _POOL.FindEnumTypeByName("authctl.agent.v1.AccountState")
WatchEventKind = _POOL.FindEnumTypeByName("authctl.agent.v1.WatchEventKind")

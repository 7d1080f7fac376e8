"""Drift: the committed descriptor set is what grpcio-tools makes of the .proto today."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

from conftest import REPO

COMMITTED = REPO / "clients/python/src/authctl/agent.binpb"
REGENERATE = (
    "python -m grpc_tools.protoc -Iproto/proto "
    "--descriptor_set_out=clients/python/src/authctl/agent.binpb authctl/agent/v1/agent.proto"
)


def test_descriptor_matches_the_proto(tmp_path: Path) -> None:
    out = tmp_path / "agent.binpb"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{REPO / 'proto/proto'}",
            f"--descriptor_set_out={out}",
            "authctl/agent/v1/agent.proto",
        ]
    )
    assert rc == 0
    assert out.read_bytes() == COMMITTED.read_bytes(), (
        f"agent.proto changed: regenerate the Python client's descriptor (from the repository: "
        f"{REGENERATE})"
    )


def test_every_method_the_client_calls_exists() -> None:
    from authctl import _proto

    for name in ("GetToken", "ListAccounts", "Watch"):
        assert _proto.method(name) == f"/authctl.agent.v1.Agent/{name}"

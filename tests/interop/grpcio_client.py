"""A Python grpcio client at its default settings, for the interop tests (tests/tests/e2e/interop.rs).

    grpcio_client.py TARGET ACCOUNT PROTO_DIR

TARGET is a channel target as a user would write it (`unix:/path` or `unix:///path`); no channel
option is set, so grpcio sends its default :authority (the percent-encoded socket path). Calls
health, reflection (v1 and v1alpha), ListAccounts, GetToken, and reads one Watch event (caused by a
forced refresh), then prints one JSON object with what it saw. Exits non-zero on any failure.
"""

import json
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_tools import protoc

TIMEOUT = 15


def agent_stubs(proto_dir):
    """Generates the agent's stubs with grpcio-tools, as a user of the .proto would.

    They are made top-level modules (`agent_pb2`): under their package path, `authctl/agent/v1/`,
    they would be shadowed by the `authctl` client package installed in the same environment.
    """
    out = tempfile.mkdtemp(prefix="authctl-stubs-")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}/authctl/agent/v1",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "agent.proto",
        ]
    )
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, out)
    import agent_pb2  # noqa: PLC0415
    import agent_pb2_grpc  # noqa: PLC0415

    return agent_pb2, agent_pb2_grpc


def list_services(channel, version):
    """ListServices over grpc.reflection.<version> (the messages of v1 and v1alpha are the same)."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT)
    return sorted(s.name for r in responses for s in r.list_services_response.service)


def main():
    target, account, proto_dir = sys.argv[1:4]
    agent_pb2, agent_pb2_grpc = agent_stubs(proto_dir)
    out = {"grpcio": grpc.__version__}
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="authctl.agent.v1.Agent"), timeout=TIMEOUT
        )
        out["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)

        out["reflection_v1"] = list_services(channel, "v1")
        out["reflection_v1alpha"] = list_services(channel, "v1alpha")
        # grpcio-reflection's own client (v1alpha): the agent's descriptors, resolved into a pool.
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName("authctl.agent.v1.Agent")
        out["reflected_methods"] = sorted(m.name for m in service.methods)

        agent = agent_pb2_grpc.AgentStub(channel)
        accounts = agent.ListAccounts(agent_pb2.ListAccountsRequest(), timeout=TIMEOUT)
        out["accounts"] = [a.name for a in accounts.accounts]
        token = agent.GetToken(agent_pb2.GetTokenRequest(account=account), timeout=TIMEOUT)
        out["token"] = token.access_token
        out["token_account"] = token.account

        watch = agent.Watch(agent_pb2.WatchRequest(account=account), timeout=TIMEOUT)
        watch.initial_metadata()  # the agent subscribed before it answered with headers
        agent.GetToken(
            agent_pb2.GetTokenRequest(account=account, force_refresh=True), timeout=TIMEOUT
        )
        event = next(watch)
        watch.cancel()
        out["watch"] = {
            "account": event.account,
            "kind": agent_pb2.WatchEventKind.Name(event.kind),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

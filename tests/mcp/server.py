"""A real Streamable HTTP MCP server for authctl's end-to-end tests, built with the official
Python SDK (`mcp` on PyPI, pinned in tests/interop/requirements.txt).

    python tests/mcp/server.py ISSUER

It is an OAuth 2.1 protected resource (RFC 9728 metadata, `WWW-Authenticate` challenges, from the
SDK): every bearer token must be a JWT signed by the test provider at ISSUER (its JWKS) whose
audience is this server's resource URL, `http://127.0.0.1:PORT/mcp` (RFC 8707). It binds an
OS-assigned port on 127.0.0.1 and prints one line to stdout when ready:

    {"url": "http://127.0.0.1:PORT/mcp"}

Tools: `whoami` (the token's subject, audience and scopes) and `countdown(n)` (n progress
notifications streamed on the request's event stream, then "liftoff").

Test controls (no authorization), JSON:
    POST /__test/expire   every token seen so far is refused from now on as expired, as if its
                          lifetime had run out (a fresh one from a refresh is accepted)
    POST /__test/require-scope  {"scope": S}: from now on a token without scope S gets a 403
                          `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` naming
                          every scope needed (RFC 6750 §3.1), before the SDK sees the request
    GET  /__test/stats    {"verified", "refused", "insufficient_scope", "post", "get",
                          "delete"}: bearer checks and MCP requests by method
"""

import asyncio
import json
import socket
import sys
import urllib.request

import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

issuer = sys.argv[1].rstrip("/")
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
resource = f"http://127.0.0.1:{port}/mcp"

with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as r:
    jwks_uri = json.load(r)["jwks_uri"]
jwks = jwt.PyJWKClient(jwks_uri)

expired: set[str] = set()
required: list[str] = ["mcp:read"]
seen: set[str] = set()
stats = {"verified": 0, "refused": 0, "insufficient_scope": 0, "post": 0, "get": 0, "delete": 0}


def log(*args: object) -> None:
    print("[mcp-server]", *args, file=sys.stderr, flush=True)


class Verifier:
    """The bearer check: signature (JWKS), issuer, expiry and audience = this resource."""

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=resource, issuer=issuer
            )
        except Exception as e:  # any bad token is refused, never an error page
            log("refused a token:", e)
            stats["refused"] += 1
            return None
        jti = str(claims.get("jti"))
        if jti in expired:
            log("refused a token: expired (test control)")
            stats["refused"] += 1
            return None
        seen.add(jti)
        stats["verified"] += 1
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=claims.get("exp"),
            resource=resource,
            subject=claims.get("sub"),
            claims=claims,
        )


server = MCPServer(
    name="authctl-test-mcp",
    token_verifier=Verifier(),
    auth=AuthSettings(
        issuer_url=issuer,
        resource_server_url=resource,
        required_scopes=["mcp:read"],
        validate_token_resource=True,
    ),
)


@server.tool()
def whoami() -> str:
    """Who the bearer token says the caller is."""
    t = get_access_token()
    claims = (t.claims or {}) if t else {}
    return json.dumps({"sub": claims.get("sub"), "aud": claims.get("aud"), "scope": claims.get("scope")})


@server.tool()
async def countdown(n: int, ctx: Context) -> str:
    """Counts down from n, one progress notification a step, then lifts off."""
    for i in range(n):
        await ctx.report_progress(i + 1, n, f"{n - i}")
        await asyncio.sleep(0.05)
    return "liftoff"


@server.custom_route("/__test/expire", methods=["POST"])
async def expire(_request: Request) -> JSONResponse:
    expired.update(seen)
    log(f"expired {len(seen)} token(s)")
    return JSONResponse({"expired": len(expired)})


@server.custom_route("/__test/require-scope", methods=["POST"])
async def require_scope(request: Request) -> JSONResponse:
    scope = (await request.json())["scope"]
    if scope not in required:
        required.append(scope)
    return JSONResponse({"required": required})


def insufficient_scope(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request's bearer lacks a required scope (its signature is the SDK's to check)."""
    auth = dict(headers).get(b"authorization", b"").decode("latin-1")
    if not auth.lower().startswith("bearer "):
        return False
    try:
        claims = jwt.decode(auth[7:].strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    granted = str(claims.get("scope", "")).split()
    return any(s not in granted for s in required)


@server.custom_route("/__test/stats", methods=["GET"])
async def get_stats(_request: Request) -> JSONResponse:
    return JSONResponse(stats)


app = server.streamable_http_app(host="127.0.0.1")


async def counted(scope, receive, send):
    """Counts the MCP requests by method, then hands them to the SDK's app."""
    if scope["type"] == "http" and scope["path"] == "/mcp":
        key = scope["method"].lower()
        if key in stats:
            stats[key] += 1
        if insufficient_scope(scope["headers"]):
            stats["insufficient_scope"] += 1
            challenge = (
                f'Bearer error="insufficient_scope", scope="{" ".join(required)}", '
                f'resource_metadata="http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"'
            )
            response = JSONResponse(
                {"error": "insufficient_scope"}, status_code=403, headers={"WWW-Authenticate": challenge}
            )
            await response(scope, receive, send)
            return
    await app(scope, receive, send)


async def main() -> None:
    config = uvicorn.Config(counted, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    while not srv.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.02)
    print(json.dumps({"url": resource}), flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main())

"""An MCP host for authctl's end-to-end tests: the official Python SDK's stdio client (`mcp` on
PyPI) starts `authctl mcp URL` as its MCP server and runs the steps named on the command line:

    python tests/mcp/client.py AUTHCTL URL STEP...

Steps: `list` (tools/list), `whoami` and `countdown` (tools/call; countdown collects its progress
notifications), `expire` and `require-write` (the test server's POST /__test/expire and
/__test/require-scope {"scope": "mcp:write"}, outside MCP). `initialize` always
comes first. Prints one JSON object to stdout: {"protocol": …, "steps": [{"step", "ok", …}]}. A
step whose request gets a JSON-RPC error records it ({"ok": false, "error": message}) and the
run goes on; any other failure exits non-zero. The environment is passed to authctl whole.
"""

import asyncio
import json
import os
import sys
import urllib.request

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

authctl, url, *steps = sys.argv[1:]
TIMEOUT = 60


async def run() -> dict:
    params = StdioServerParameters(command=authctl, args=["mcp", url], env=dict(os.environ))
    out: dict = {"steps": []}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=TIMEOUT) as session:
            init = await session.initialize()
            out["protocol"] = init.protocol_version
            out["server"] = init.server_info.name
            for step in steps:
                out["steps"].append(await run_step(session, step))
    return out


async def run_step(session: ClientSession, step: str) -> dict:
    rec: dict = {"step": step}
    try:
        if step == "list":
            tools = await session.list_tools()
            rec["tools"] = sorted(t.name for t in tools.tools)
        elif step == "whoami":
            r = await session.call_tool("whoami", {})
            rec["error_result"] = bool(r.is_error)
            rec["result"] = json.loads(r.content[0].text)
        elif step == "countdown":
            progress: list[str] = []

            async def on_progress(p: float, total: float | None, message: str | None) -> None:
                progress.append(message or "")

            r = await session.call_tool("countdown", {"n": 3}, progress_callback=on_progress)
            rec["error_result"] = bool(r.is_error)
            rec["result"] = r.content[0].text
            rec["progress"] = progress
        elif step in ("expire", "require-write"):
            base = url.rsplit("/mcp", 1)[0]
            path = "expire" if step == "expire" else "require-scope"
            body = json.dumps({"scope": "mcp:write"}).encode()
            req = urllib.request.Request(
                f"{base}/__test/{path}", data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                rec.update(json.load(resp))
        else:
            raise SystemExit(f"unknown step {step}")
    except MCPError as e:
        rec["ok"] = False
        rec["code"] = e.error.code
        rec["error"] = e.error.message
        return rec
    rec["ok"] = True
    return rec


print(json.dumps(asyncio.run(asyncio.wait_for(run(), TIMEOUT * 3))), flush=True)

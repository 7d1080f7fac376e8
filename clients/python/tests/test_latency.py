"""What a Python caller waits for a cached token: p50 of 5,000 `GetToken` calls on one channel.

The bound is loose (a debug build of the agent on a busy CI machine); it catches a regression of
kind, such as a connection per call. The number is printed for the record.
"""

from __future__ import annotations

import statistics
import time

import pytest

import authctl
from conftest import World

CALLS = 5000


def test_cache_hit_latency(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    agent = authctl.Agent(world.socket)
    agent.token("corp")  # connected, and the token cached
    samples = []
    for _ in range(CALLS):
        start = time.perf_counter()
        agent.token("corp")
        samples.append(time.perf_counter() - start)
    samples.sort()
    p50 = statistics.median(samples) * 1e3
    p99 = samples[int(len(samples) * 0.99)] * 1e3
    with capsys.disabled():
        print(f"\nPython cache hit over {CALLS} GetToken calls: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    assert p50 < 20, f"p50 {p50:.3f} ms"

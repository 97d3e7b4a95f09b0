"""Thousands of CONNECT tunnels, then the upstream resets half of them, the clients reset a
quarter and close the rest: the proxy's file descriptors come back to where they were, its
memory does not grow from one round to the next, and every tunnel is logged exactly once
(issue 13). CI: 3 rounds of 2,000 tunnels; AWF_SOAK_SCALE=long: 3 rounds of 9,000."""

import asyncio
import os
import socket
import time
import unittest

import awf
import soak
from awf import ALLOWED

N = soak.scale(2000, 9000)
ROUNDS = 3


class TunnelChurnTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        soak.raise_nofile(2 * N + 1000)  # each tunnel: our client and server ends
        # A small ASan quarantine: freed memory is reused instead of held back, so RSS tells
        # a leak from the allocator's caching (leaks proper are ASan's exit check).
        os.environ["ASAN_OPTIONS"] = "detect_leaks=1:quarantine_size_mb=4"
        self.addCleanup(os.environ.pop, "ASAN_OPTIONS", None)

    def test_tunnels_reset_fds_and_memory_come_back(self):
        asyncio.run(self.run_rounds())

    async def run_rounds(self):
        srv = await soak.EchoServer().start()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[srv.port]),
                        *soak.opaque(srv.port))
        pid = px.p.pid
        hp = "%s:%d" % (ALLOWED, srv.port)
        # One tunnel first: lazily made things (the resolver's state, the pipe pool) exist.
        r, w = await soak.open_tunnel(px.port, hp, "warm")
        w.close()
        await soak.until_closed(r)
        fds0, _ = await asyncio.to_thread(soak.settle, lambda: soak.fd_count(pid),
                                          lambda v: False, 1.0)
        rss0 = soak.rss_kib(pid)
        soak.figure("tunnels: proxy fds / RSS KiB at rest", "%d / %d" % (fds0, rss0))
        after = []
        for rnd in range(ROUNDS):
            after.append(await self.one_round(px, srv, hp, rnd, fds0))
        # No growth once warm: what the first round left is the allocator's caching (and
        # ASan's quarantine), not a leak; the last round must not add to the one before.
        grow = after[-1] - after[-2]
        soak.figure("tunnels: RSS KiB after each round", " / ".join(str(a) for a in after))
        self.assertLess(grow, max(4096, after[-2] // 10), "RSS grows round after round")
        await srv.stop()
        self.assertEqual(px.stop(), 0, px.stderr)
        lines = px.log_lines()
        connects = [awf.parse_fd(self, l) for l in lines]
        self.assertEqual(len([e for e in connects if e["method"] == "CONNECT"]),
                         1 + ROUNDS * N, "each tunnel logged exactly once")

    async def one_round(self, px, srv, hp, rnd, fds0):
        pid = px.p.pid
        sem = asyncio.Semaphore(256)  # connects in flight at once (the listen backlog)

        async def one(i):
            async with sem:
                return await soak.open_tunnel(px.port, hp, "r%d-%d" % (rnd, i))

        t0 = time.monotonic()
        tunnels = await asyncio.gather(*[one(i) for i in range(N)])
        opened = time.monotonic() - t0
        fds_peak, rss_peak = soak.fd_count(pid), soak.rss_kib(pid)
        self.assertGreaterEqual(fds_peak, fds0 + 2 * N, "two descriptors per open tunnel")
        soak.figure("tunnels round %d: %d opened in s / proxy fds / RSS KiB" % (rnd + 1, N),
                    "%.1f / %d / %d" % (opened, fds_peak, rss_peak))
        # The upstream resets the first half, the clients reset the next quarter and close
        # the last quarter with a FIN.
        half, three_q = N // 2, 3 * N // 4
        for i in range(half):
            soak.rst(srv.conns["r%d-%d" % (rnd, i)])
        for i in range(half, three_q):
            soak.rst(tunnels[i][1])
        for i in range(three_q, N):
            tunnels[i][1].write_eof()
        # Every client sees its tunnel end: none hangs.
        ends = await asyncio.gather(*[soak.until_closed(tunnels[i][0]) for i in range(half)],
                                    *[soak.until_closed(tunnels[i][0]) for i in range(three_q, N)])
        self.assertEqual(len(ends), N - (three_q - half))
        for _, w in tunnels:
            w.close()
        fds, took = await asyncio.to_thread(soak.settle, lambda: soak.fd_count(pid),
                                            lambda v: v <= fds0)
        self.assertLessEqual(fds, fds0, "descriptors left open after the round")
        await asyncio.sleep(0.5)
        rss = soak.rss_kib(pid)
        soak.figure("tunnels round %d: fds back to %d in s / RSS KiB after" % (rnd + 1, fds0),
                    "%.2f / %d" % (took, rss))
        return rss


if __name__ == "__main__":
    unittest.main(verbosity=2)

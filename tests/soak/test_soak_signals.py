"""Signals under load. SIGHUP every 100 ms while clients make allowed and denied requests and
open tunnels, on two loops: no request misdecided, none dropped, each logged once. SIGTERM with
streams, tunnels, requests waiting on a slow upstream and short requests in flight: the proxy
exits 0 promptly and every transaction it took in is logged exactly once (issue 13).
CI: SIGHUP storm for 8 s, SIGTERM with 3 x 60 long transactions in flight; AWF_SOAK_SCALE=long:
60 s and 3 x 300."""

import asyncio
import os
import signal
import time
import unittest

import awf
import soak
from awf import ALLOWED, OTHER

STORM_SECONDS = soak.scale(8, 60)
IN_FLIGHT = soak.scale(60, 300)


class Upstream:
    """asyncio HTTP/1.1 upstream: /small/ID answers at once; /stream/ID sends a chunked event
    every 100 ms and never ends; /slow/ID answers after 60 s. Keep-alive."""

    async def start(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0, backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]
        self.started = 0  # streams and slow requests that reached the upstream
        return self

    async def serve(self, r, w):
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                parts = head.split(b" ", 2)[1].split(b"/")  # origin form: /x/KIND/ID
                kind = parts[2] if len(parts) > 2 else b""
                if kind == b"stream":
                    self.started += 1
                    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n")
                    while True:
                        w.write(b"6\r\ndata:\n\r\n")
                        await w.drain()
                        await asyncio.sleep(0.1)
                if kind == b"slow":
                    self.started += 1
                    await asyncio.sleep(60)
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await w.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass
        finally:
            w.close()


def get(hp, path):
    return b"GET http://%s%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp.encode(), path.encode(),
                                                              hp.encode())


async def status_of(r):
    head = await r.readuntil(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head


class SignalsUnderLoadTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        soak.raise_nofile(8 * IN_FLIGHT + 1000)

    def test_sighup_every_100ms_under_load(self):
        asyncio.run(self.storm())

    async def storm(self):
        up = await Upstream().start()
        echo = await soak.EchoServer().start()
        text, _ = awf.policy_yaml(allow=[ALLOWED])
        path = self.write("policy.yaml", text)
        px = self.proxy("-p", path, "--allow-ranges", "127.0.0.0/8", "--allow-ports",
                        "%d,%d" % (up.port, echo.port), "--threads", "2", *soak.opaque(echo.port))
        ahp, dhp = "%s:%d" % (ALLOWED, up.port), "%s:%d" % (OTHER, up.port)
        end = time.monotonic() + STORM_SECONDS
        made, wrong = {"allow": 0, "deny": 0, "tunnel": 0}, []
        hups = 0

        async def client(k):
            n = 0
            while time.monotonic() < end:
                n += 1
                kind = ("allow", "deny", "tunnel")[(k + n) % 3]
                ident = "c%d-%d" % (k, n)
                try:
                    if kind == "tunnel":
                        r, w = await soak.open_tunnel(px.port, "%s:%d" % (ALLOWED, echo.port),
                                                      ident)
                        w.close()
                        made[kind] += 1
                        continue
                    r, w = await asyncio.open_connection("127.0.0.1", px.port)
                    w.write(get(ahp if kind == "allow" else dhp, "/small/%s" % ident))
                    status, _ = await asyncio.wait_for(status_of(r), awf.WAIT)
                    w.close()
                except (ConnectionError, OSError, asyncio.IncompleteReadError,
                        AssertionError) as e:
                    wrong.append((ident, kind, repr(e)))
                    continue
                made[kind] += 1
                if status != (200 if kind == "allow" else 403):
                    wrong.append((ident, kind, status))

        async def hupper():
            nonlocal hups
            i = 0
            while time.monotonic() < end:
                i += 1
                # The same policy, written anew each time (rename: never half a file).
                self.write("policy.yaml.new", text + "# reload %d\n" % i)
                os.rename(path + ".new", path)
                os.kill(px.p.pid, signal.SIGHUP)
                hups += 1
                await asyncio.sleep(0.1)

        await asyncio.gather(hupper(), *[client(k) for k in range(16)])
        reloads = len([l for l in px.stderr.split("\n") if "policy reloaded" in l])
        soak.figure("SIGHUP storm: %d s, SIGHUPs / reloads / allowed / denied / tunnels"
                    % STORM_SECONDS, "%d / %d / %d / %d / %d" % (
                        hups, reloads, made["allow"], made["deny"], made["tunnel"]))
        self.assertEqual(wrong, [], "misdecided or dropped")
        self.assertNotIn("reload refused", px.stderr)
        self.assertGreater(reloads, hups // 2, "most SIGHUPs reload (close ones may merge)")
        await echo.stop()
        up.server.close()
        self.assertEqual(px.stop(), 0, px.stderr)
        entries = [awf.parse_fd(self, l) for l in px.log_lines()]
        self.assertEqual(len(entries), sum(made.values()), "each logged once")
        for e in entries:
            want = (403, "TCP_DENIED") if e["host"].startswith(OTHER) else None
            if want:
                self.assertEqual((e["status"], e["tag"]), want, e["line"])
            else:
                self.assertEqual(e["status"], 200, e["line"])

    def test_sigterm_under_load_logs_each_once(self):
        asyncio.run(self.term())

    async def term(self):
        up = await Upstream().start()
        echo = await soak.EchoServer().start()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.port, echo.port]),
                        "--threads", "2", *soak.opaque(echo.port))
        hp = "%s:%d" % (ALLOWED, up.port)
        held, sent, answered = [], set(), set()
        # Long transactions in flight: streams mid-body, tunnels, requests at a slow upstream.
        for i in range(IN_FLIGHT):
            for kind in ("stream", "slow"):
                r, w = await asyncio.open_connection("127.0.0.1", px.port)
                w.write(get(hp, "/x/%s/%d" % (kind, i)))
                sent.add("http://%s/x/%s/%d" % (hp, kind, i))
                held.append((r, w))
            held.append(await soak.open_tunnel(px.port, "%s:%d" % (ALLOWED, echo.port),
                                               "t%d" % i))
        t0 = time.monotonic()
        while up.started < 2 * IN_FLIGHT:  # every stream and slow request reached upstream
            self.assertLess(time.monotonic() - t0, awf.WAIT, "requests did not arrive")
            await asyncio.sleep(0.05)
        stop = False

        async def shorts(k):  # short requests until the proxy is gone
            n = 0
            while not stop:
                n += 1
                url = "/x/small/%d-%d" % (k, n)
                try:
                    r, w = await asyncio.open_connection("127.0.0.1", px.port)
                    w.write(get(hp, url))
                    sent.add("http://%s%s" % (hp, url))
                    status, _ = await asyncio.wait_for(status_of(r), awf.WAIT)
                    answered.add("http://%s%s" % (hp, url))
                    w.close()
                except (ConnectionError, OSError, asyncio.IncompleteReadError):
                    await asyncio.sleep(0.01)

        tasks = [asyncio.ensure_future(shorts(k)) for k in range(8)]
        await asyncio.sleep(1.0)
        def wait_exit():  # timed in its own thread: the busy test loop adds nothing
            rc = px.p.wait(awf.WAIT)
            return rc, time.monotonic()

        t0 = time.monotonic()
        px.p.send_signal(signal.SIGTERM)
        rc, t1 = await asyncio.to_thread(wait_exit)
        took = t1 - t0
        stop = True
        await asyncio.gather(*tasks)
        soak.figure("SIGTERM with %d transactions in flight + short requests: exit after, s"
                    % (3 * IN_FLIGHT), "%.3f" % took)
        self.assertEqual(rc, 0, px.stderr)
        self.assertLess(took, 1.0, "SIGTERM to exit (issue 13: under 1 s)")
        for r, w in held:
            w.close()
        await echo.stop()
        up.server.close()
        entries = [awf.parse_fd(self, l) for l in px.log_lines()]
        per_url = {}
        for e in entries:  # requests have a URL of their own; tunnels share one
            if e["method"] == "GET":
                per_url[e["url"]] = per_url.get(e["url"], 0) + 1
        self.assertEqual([u for u, n in per_url.items() if n > 1], [], "logged more than once")
        long_ones = {u for u in sent if "/small/" not in u}
        self.assertEqual(long_ones - set(per_url), set(), "an in-flight transaction unlogged")
        self.assertEqual(answered - set(per_url), set(), "an answered request unlogged")
        self.assertEqual(len([e for e in entries if e["method"] == "CONNECT"]), IN_FLIGHT)
        for e in entries:
            if e["url"] in long_ones or e["method"] == "CONNECT":
                self.assertTrue(e["tag"].endswith("_ABORTED"), e["line"])
        soak.figure("SIGTERM: transactions logged (each once) / short requests answered",
                    "%d / %d" % (len(entries), len(answered)))


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""DNS faults from a scripted DNS server on loopback (tests/soak/dnsfault.py): SERVFAIL,
REFUSED, NXDOMAIN, no answer at all, slow answers, truncated answers (TCP retry), a TCP retry
that fails, garbage, a spoofed ID, a resolver that is down and comes back. Every request gets a
clear answer (503 ERR_DNS_FAIL, or 200 where the name does resolve), none hangs, nothing wrong
is cached, and no connection or socket is left behind (issue 13)."""

import socket
import threading
import time
import unittest

import awf
import soak
from dnsfault import DnsFault

DNS_TIMEOUT = 2.0


class DnsFaultTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.dns = DnsFault()
        self.addCleanup(self.dns.stop)
        self.px = self.proxy("--allow-domains", "test", "--allow-ranges", "127.0.0.0/8",
                             "--allow-ports", str(self.up.http), "--dns-timeout", "2s",
                             "--set", "dns.negative_ttl=2s", hosts={},
                             dns="127.0.0.1:%d" % self.dns.port)

    def get(self, name):
        """(status, X-Squid-Error, seconds) of GET http://name:port/small through the proxy."""
        t0 = time.monotonic()
        hp = "%s:%d" % (name, self.up.http)
        r = awf.raw_request(self.px, b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\n"
                            b"Connection: close\r\n\r\n" % (hp.encode(), hp.encode()))
        self.assertIsNotNone(r, "%s: closed without an answer" % name)
        return r.status, r.header("X-Squid-Error"), time.monotonic() - t0

    def test_each_fault_gets_a_clear_answer(self):
        want = {"ok": 200, "trunc": 200, "slow": 200, "servfail": 503, "refused": 503, "nx": 503,
                "silent": 503, "tcpfail": 503, "garbage": 503, "wrongid": 503, "private": 403}
        self.dns.slow = 0.3  # within c-ares's first try (a third of the 2 s deadline)
        worst = 0.0
        for kind, status in want.items():
            got, err, took = self.get("%s.test" % kind)
            worst = max(worst, took)
            self.assertEqual(got, status, kind)
            if status == 503:
                self.assertEqual(err, "ERR_DNS_FAIL 0", kind)
            self.assertLess(took, awf.WAIT, kind)
        soak.figure("dns faults: slowest answer (timeout %.0f s), s" % DNS_TIMEOUT,
                    "%.2f" % worst)
        entries = self.px.entries(len(want))
        for e, (kind, status) in zip(entries, want.items()):
            self.assertEqual(e["status"], status, e["line"])
            if status == 503:
                awf.assert_fields(self, e, tag="TCP_MISS", hier="HIER_NONE", server="-")
        # The truncated answer was asked again over TCP.
        self.assertGreaterEqual(self.dns.count("trunc.test"), 2)

    def test_late_answer_after_a_retry(self):
        # The answer comes after c-ares's first try gave up (a third of the deadline) but
        # before the deadline: either the late answer or the retry's makes it a 200.
        self.dns.slow = 1.0
        status, _, _ = self.get("slow.test")
        self.assertEqual(status, 200)

    def test_passing_failures_are_not_cached(self):
        for kind in ("servfail", "refused", "silent", "tcpfail", "garbage", "wrongid"):
            self.dns.fixed = False
            self.assertEqual(self.get("%s-c.test" % kind)[0], 503, kind)
            self.dns.fixed = True  # the resolver recovered: the next request resolves
            status, _, _ = self.get("%s-c.test" % kind)
            self.assertEqual(status, 200, kind)
        entries = [awf.parse_fd(self, l) for l in self.px.wait_log(12)]
        ok = [e for e in entries if e["status"] == 200]
        self.assertEqual(len(ok), 6)
        for e in ok:  # the spoofed 127.0.0.2 was not taken nor kept
            self.assertEqual(e["server"], "127.0.0.1", e["line"])

    def test_nxdomain_cached_only_for_negative_ttl(self):
        self.assertEqual(self.get("nx-n.test")[0], 503)
        self.dns.fixed = True
        t0 = time.monotonic()
        status = 503
        while status == 503 and time.monotonic() - t0 < awf.WAIT:
            status = self.get("nx-n.test")[0]
            time.sleep(0.2)
        self.assertEqual(status, 200, "the NXDOMAIN outlived dns.negative_ttl (2 s)")
        soak.figure("dns: NXDOMAIN served from cache for (negative_ttl 2 s), s",
                    "%.1f" % (time.monotonic() - t0))

    def test_resolver_down_then_back(self):
        self.dns.stop()
        status, err, took = self.get("ok-down.test")
        self.assertEqual((status, err), (503, "ERR_DNS_FAIL 0"))
        soak.figure("dns: resolver down, 503 after s", "%.2f" % took)
        self.dns.start()
        status, _, _ = self.get("ok-down.test")
        self.assertEqual(status, 200, "a failure while the resolver was down was cached")

    def test_many_waiting_on_a_silent_server(self):
        # 40 clients at once for one name nobody answers: one lookup for all of them, every
        # client gets its 503, nothing stays open afterwards.
        self.get("ok.test")
        fds0 = soak.fd_count(self.px.p.pid)
        results = []

        def one():
            results.append(self.get("silent-many.test"))

        ts = [threading.Thread(target=one) for _ in range(40)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(awf.WAIT * 2)
        self.assertEqual(sorted(r[0] for r in results), [503] * 40)
        soak.figure("dns: 40 clients on a silent server, queries sent / slowest 503 s",
                    "%d / %.2f" % (self.dns.count("silent-many.test"),
                                   max(r[2] for r in results)))
        self.assertLessEqual(self.dns.count("silent-many.test"), 16, "one lookup for all")
        fds, _ = soak.settle(lambda: soak.fd_count(self.px.p.pid), lambda v: v <= fds0)
        self.assertLessEqual(fds, fds0, "connections or sockets left open")


if __name__ == "__main__":
    unittest.main(verbosity=2)

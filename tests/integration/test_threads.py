"""Several event-loop threads (--threads N): the loops share the listening addresses
(SO_REUSEPORT), the policy, the access log and the connection limits; every request is served and
logged once, whole; a reload reaches every loop; SIGTERM stops them all."""

import signal
import threading
import unittest

import awf
from awf import ALLOWED, OTHER, pattern


class ThreadsTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.req = b"GET http://%s:%d/small HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (
            ALLOWED.encode(), self.up.http, ALLOWED.encode(), self.up.http)

    def proxy_threads(self, *extra):
        return self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]),
                          "--threads", "2", *extra)

    def test_every_request_served_and_logged_once(self):
        px = self.proxy_threads()
        results = []

        def client():
            for _ in range(10):
                s = awf.connect(px)  # a new connection each time: spread over the loops
                try:
                    s.sendall(self.req)
                    results.append(awf.Reader(s).response())
                finally:
                    s.close()

        workers = [threading.Thread(target=client) for _ in range(6)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        self.assertEqual(len(results), 60)
        for r in results:
            self.assertEqual((r.status, r.body), (200, pattern(100)))
        self.assertEqual(px.stop(signal.SIGTERM), 0, px.stderr)
        lines = px.log_lines()
        self.assertEqual(len(lines), 60)
        for line in lines:  # whole lines, never two interleaved
            awf.assert_fields(self, awf.parse_fd(self, line), status=200, tag="TCP_MISS")

    def test_connection_limit_is_shared(self):
        px = self.proxy_threads("--max-connections", "2")
        held = []
        for _ in range(2):  # each known to be served, so each is counted
            s = awf.connect(px)
            self.addCleanup(s.close)
            s.sendall(self.req)
            self.assertEqual(awf.Reader(s).response().status, 200)
            held.append(s)
        # Whichever loop the next connections land on, the limit counts all of them.
        for _ in range(4):
            r = awf.raw_request(px, self.req)
            self.assertIsNotNone(r, "closed without an answer")
            self.assertEqual(r.status, 503, r)

    def test_reload_reaches_every_loop(self):
        allow = self.write("allow.txt", ALLOWED + "\n")
        px = self.proxy("--allow-domains-file", allow, "--allow-ranges", "127.0.0.0/8",
                        "--allow-ports", str(self.up.http), "--threads", "2")
        self.write("allow.txt", OTHER + "\n")
        px.p.send_signal(signal.SIGHUP)
        px.wait_line("policy reloaded")
        # The old policy allowed ALLOWED: after the reload, no loop may still allow it.
        for _ in range(12):
            r = awf.raw_request(px, self.req)
            self.assertEqual(r.status, 403, r)
        self.assertEqual(px.stop(), 0, px.stderr)


if __name__ == "__main__":
    unittest.main()

"""Explicit HTTP forwarding (absolute-form requests): bodies
byte for byte, keep-alive, pipelining, request bodies, 100-continue, HEAD, 204/304, a second real
client (urllib), and the firewall_detailed line of every transaction (SPEC §2, §5, §6).
Origin-form (intercepted) requests are in test_intercept.py."""

import json
import re
import threading
import unittest
import urllib.request

import awf
from awf import ALLOWED, assert_fields, pattern

UA = re.compile(r"^curl/\d")


class ForwardTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]))
        self.base = "http://%s:%d" % (ALLOWED, self.up.http)
        self.hostport = "%s:%d" % (ALLOWED, self.up.http)
        self.server = "127.0.0.1"

    def assertForwarded(self, e, path, method="GET", status=200, ua=UA):
        assert_fields(self, e, client="127.0.0.1", client_port=re.compile(r"^\d+$"),
                      host=self.hostport, server=self.server, server_port=str(self.up.http),
                      version="1.1", method=method, status=status, tag="TCP_MISS",
                      hier="HIER_DIRECT", url=self.base + path, ua=ua)

    def test_small_exact_bytes(self):
        r = self.curl(self.base + "/small", proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(r.body, pattern(100))
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/small")

    def test_large_body_exact_bytes(self):
        n = 3 * 1024 * 1024 + 7
        r = self.curl(self.base + "/bytes/%d" % n, proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(len(r.body), n)
        self.assertEqual(r.body, pattern(n))
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/bytes/%d" % n)

    def test_chunked_response(self):
        r = self.curl(self.base + "/chunked/5000", proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(r.body, pattern(5000))
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/chunked/5000")

    def test_keep_alive_reuse(self):
        rc, res, err = awf.curl_multi(self, [self.base + "/small", self.base + "/bytes/1000",
                                             self.base + "/chunked/300"], proxy=self.px)
        self.assertEqual(rc, 0, err)
        self.assertEqual([c for c, _, _ in res], [200, 200, 200])
        self.assertEqual([b for _, _, b in res], [pattern(100), pattern(1000), pattern(300)])
        # curl opened one connection to the proxy and reused it for the next URLs.
        self.assertEqual([n for _, n, _ in res], [1, 0, 0], res)
        entries = self.px.entries(3)
        for e, path in zip(entries, ("/small", "/bytes/1000", "/chunked/300")):
            self.assertForwarded(e, path)
        self.assertEqual(len({e["client_port"] for e in entries}), 1, "one client connection")

    def test_pipelining(self):
        reqs = b"".join(
            b"GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pipe\r\n\r\n"
            % (self.base.encode(), p, self.hostport.encode())
            for p in (b"/small", b"/echo", b"/bytes/70000"))
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(reqs)  # all three at once, before any answer
        rd = awf.Reader(s)
        r1, r2, r3 = rd.response(), rd.response(), rd.response()
        self.assertEqual((r1.status, r1.body), (200, pattern(100)))
        self.assertEqual(r2.status, 200)
        self.assertEqual(json.loads(r2.body)["target"].split("?")[0].rsplit("/", 1)[-1], "echo")
        self.assertEqual((r3.status, r3.body), (200, pattern(70000)))
        s.close()
        entries = self.px.entries(3)
        for e, path in zip(entries, ("/small", "/echo", "/bytes/70000")):
            self.assertForwarded(e, path, ua="pipe")

    def test_post_content_length(self):
        body = self.write("body", pattern(200000))
        r = self.curl(self.base + "/echo", "--data-binary", "@" + body, proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        doc = json.loads(r.body)
        self.assertEqual(doc["method"], "POST")
        self.assertEqual(doc["body"].encode("latin-1"), pattern(200000))
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/echo", method="POST")

    def test_post_chunked(self):
        body = self.write("body", pattern(100000))
        r = self.curl(self.base + "/echo", "--data-binary", "@" + body,
                      "-H", "Transfer-Encoding: chunked", proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        doc = json.loads(r.body)
        self.assertEqual(doc["body"].encode("latin-1"), pattern(100000))
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/echo", method="POST")

    def test_expect_100_continue_with_curl(self):
        body = self.write("body", pattern(50000))
        r = self.curl(self.base + "/echo", "--data-binary", "@" + body,
                      "-H", "Expect: 100-continue", proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(json.loads(r.body)["body"].encode("latin-1"), pattern(50000))
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/echo", method="POST")

    def test_expect_100_continue_interim_reaches_client(self):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"POST %s/echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n" % (self.base.encode(), self.hostport.encode()))
        rd = awf.Reader(s)
        interim = rd.response(interim=True)  # the client waits for it before sending the body
        self.assertEqual(interim.status, 100)
        s.sendall(b"hello")
        r = rd.response()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["body"], "hello")
        s.close()
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/echo", method="POST", ua="-")

    def test_head_then_get_on_one_connection(self):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        h = self.hostport.encode()
        s.sendall(b"HEAD %s/bytes/5000 HTTP/1.1\r\nHost: %s\r\n\r\n" % (self.base.encode(), h))
        rd = awf.Reader(s)
        r = rd.response(head_only=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), "5000")
        s.sendall(b"GET %s/small HTTP/1.1\r\nHost: %s\r\n\r\n" % (self.base.encode(), h))
        r = rd.response()
        self.assertEqual((r.status, r.body), (200, pattern(100)))
        s.close()
        e1, e2 = self.px.entries(2)
        self.assertForwarded(e1, "/bytes/5000", method="HEAD", ua="-")
        self.assertForwarded(e2, "/small", ua="-")

    def test_head_with_curl(self):
        r = self.curl(self.base + "/bytes/5000", "-I", proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(r.header("Content-Length"), "5000")
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/bytes/5000", method="HEAD")

    def test_204_and_304_have_no_body(self):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        rd = awf.Reader(s)
        for path, status in ((b"/status/204", 204), (b"/status/304", 304), (b"/small", 200)):
            s.sendall(b"GET %s%s HTTP/1.1\r\nHost: %s\r\n\r\n"
                      % (self.base.encode(), path, self.hostport.encode()))
            r = rd.response()
            self.assertEqual(r.status, status)
        self.assertEqual(r.body, pattern(100))  # framing survived the bodiless answers
        s.close()
        entries = self.px.entries(3)
        for e, path, status in zip(entries, ("/status/204", "/status/304", "/small"),
                                   (204, 304, 200)):
            self.assertForwarded(e, path, status=status, ua="-")

    def test_urllib_client(self):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": self.px.url}))
        with opener.open(self.base + "/bytes/12345", timeout=awf.WAIT) as resp:
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.read(), pattern(12345))
        with opener.open(urllib.request.Request(self.base + "/echo", data=b"x=1"),
                         timeout=awf.WAIT) as resp:
            self.assertEqual(json.loads(resp.read())["body"], "x=1")
        e1, e2 = self.px.entries(2)
        self.assertForwarded(e1, "/bytes/12345", ua=re.compile(r"^Python-urllib/"))
        self.assertForwarded(e2, "/echo", method="POST", ua=re.compile(r"^Python-urllib/"))

    def test_query_string_logged_as_question_mark(self):
        r = self.curl(self.base + "/small?token=s3cr3t&x=1", proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        (e,) = self.px.entries(1)
        self.assertForwarded(e, "/small?")
        self.assertNotIn("s3cr3t", e["line"])

    def test_many_sequential_clients(self):
        for i in range(20):
            r = self.curl(self.base + "/small", proxy=self.px)
            self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        for e in self.px.entries(20):
            self.assertForwarded(e, "/small")


    def test_concurrent_clients(self):
        # 16 clients at once, 4 keep-alive requests each, all answered exactly and all logged.
        errors = []

        def client(i):
            try:
                s = awf.connect(self.px)
                rd = awf.Reader(s)
                for k in range(4):
                    n = 1000 * (i + 1) + k
                    s.sendall(b"GET %s/bytes/%d HTTP/1.1\r\nHost: %s\r\n\r\n"
                              % (self.base.encode(), n, self.hostport.encode()))
                    r = rd.response()
                    if (r.status, r.body) != (200, pattern(n)):
                        errors.append((i, k, r.status, len(r.body)))
                s.close()
            except Exception as e:  # reported below, in the test's thread
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(awf.WAIT * 3)
        self.assertEqual(errors, [])
        for e in self.px.entries(64):
            assert_fields(self, e, status=200, tag="TCP_MISS", ua="-",
                          url=re.compile(r"^%s/bytes/\d+$" % re.escape(self.base)))

    def test_client_aborts_download(self):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"GET %s/bytes/%d HTTP/1.1\r\nHost: %s\r\n\r\n"
                  % (self.base.encode(), 1 << 30, self.hostport.encode()))
        got = b""
        while len(got) < 65536:
            d = s.recv(65536)
            self.assertTrue(d, "closed early")
            got += d
        s.close()  # gone with most of the gigabyte still to come
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=200, tag="TCP_MISS_ABORTED", url=self.base + "/bytes/%d"
                      % (1 << 30))
        r = self.curl(self.base + "/small", proxy=self.px)  # and it still serves
        self.assertEqual((r.code, r.body), (200, pattern(100)), r)
        self.px.entries(2)


class ThreadsTest(awf.TestCase):
    def test_two_loops(self):
        up = self.upstream(tls=False)
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.http]), "--threads", "2")
        base = "http://%s:%d" % (ALLOWED, up.http)
        errors = []

        def client(i):
            for _ in range(5):
                r = curl_quiet(self, base + "/bytes/%d" % (500 + i), px)
                if r != pattern(500 + i):
                    errors.append(i)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(awf.WAIT * 3)
        self.assertEqual(errors, [])
        for e in px.entries(30):
            assert_fields(self, e, status=200, tag="TCP_MISS")


def curl_quiet(tc, url, px):
    """urllib GET through the proxy (thread-safe, unlike the tc.curl bookkeeping)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": px.url}))
    with opener.open(url, timeout=awf.WAIT) as resp:
        return resp.read()


class QueryNotStrippedTest(awf.TestCase):
    def test_strip_query_false(self):
        up = self.upstream(tls=False)
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.http]),
                        "--set", "logs.strip_query=false")
        url = "http://%s:%d/small?token=abc" % (ALLOWED, up.http)
        r = self.curl(url, proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        (e,) = px.entries(1)
        assert_fields(self, e, url=url, status=200, tag="TCP_MISS")


if __name__ == "__main__":
    unittest.main(verbosity=2)

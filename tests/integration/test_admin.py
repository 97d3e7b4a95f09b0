"""The admin listener (--admin, YAML admin:): /metrics in Prometheus text format (checked with
promtool), /healthz (503 while draining), /status (JSON); never on a proxy listener; and health
probes (a loopback connection closed before any byte) that are counted, never logged."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import awf
from awf import ALLOWED


def admin_addr(px):
    m = px.wait_line(awf.STAMP + r"awf-proxy: admin on (\S+):(\d+) ")
    if m is None:
        raise AssertionError("no admin readiness line: " + px.stderr)
    return m.group(1), int(m.group(2))


def get(addr, path, timeout=awf.WAIT):
    """(status, headers, body) of a GET to the admin listener, no proxy in between."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open("http://%s:%d%s" % (addr[0], addr[1], path), timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def parse_metrics(text):
    """{'name{labels}': value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def probe(px):
    """What `nc -z localhost PORT` does: connect over loopback, close without a byte."""
    s = socket.create_connection(px.addrs[0], awf.WAIT)
    s.close()


class AdminTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http, self.up.echo]),
                             "--admin", "127.0.0.1:0", "--threads", "2")
        self.admin = admin_addr(self.px)

    def wait_metric(self, key, want):
        deadline = time.monotonic() + awf.WAIT
        while True:
            m = parse_metrics(get(self.admin, "/metrics")[2])
            if m.get(key) == want or time.monotonic() > deadline:
                return m

    def test_a_failed_dial_counts_as_allowed(self):
        # Squid logs a CONNECT whose dial failed NONE_NONE/503 (and so does awf-proxy), but the
        # request was decided and allowed: counted allowed, not "none" (no request).
        port = awf.closed_port()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[port]), "--admin", "127.0.0.1:0")
        admin = admin_addr(px)
        for url in ("http://%s:%d/" % (ALLOWED, port), "https://%s:%d/" % (ALLOWED, port)):
            r = self.curl(url, proxy=px)
            self.assertEqual(r.connect_code or r.code, 503, r)
        px.entries(2)
        m = parse_metrics(get(admin, "/metrics")[2])
        self.assertEqual(m.get('awf_proxy_requests_total{decision="allowed",code="503"}'), 2, m)

    def test_metrics_count_traffic_and_pass_promtool(self):
        promtool = awf.need_tool("promtool")
        base = "http://%s:%d" % (ALLOWED, self.up.http)
        for _ in range(3):
            self.assertEqual(self.curl(base + "/small", proxy=self.px).code, 200)
        self.assertDenied(self.curl("http://evil.test/", proxy=self.px))
        t = awf.tunnel(self.px, "%s:%d" % (ALLOWED, self.up.echo))
        m = self.wait_metric("awf_proxy_tunnels_open", 1)
        self.assertEqual(m["awf_proxy_tunnels_open"], 1)
        t.close()
        m = self.wait_metric("awf_proxy_tunnels_open", 0)
        self.assertEqual(m['awf_proxy_requests_total{decision="allowed",code="200"}'], 4, m)
        self.assertEqual(m['awf_proxy_requests_total{decision="denied",code="403"}'], 1, m)
        self.assertEqual(m["awf_proxy_tunnels_total"], 1)
        self.assertEqual(m["awf_proxy_connections_accepted_total"], 5)
        self.assertEqual(m["awf_proxy_connections_open"], 0)
        self.assertGreater(m["awf_proxy_client_sent_bytes_total"], 300)
        self.assertGreater(m["awf_proxy_client_received_bytes_total"], 100)
        fd = 'output="0",path="%s"' % self.px.log_paths["firewall_detailed"]
        self.assertEqual(m["awf_proxy_log_lines_dropped_total{%s}" % fd], 0)
        self.assertEqual(m["awf_proxy_log_healthy"], 1)
        self.assertEqual(m["awf_proxy_event_loops"], 2)
        self.assertIn('awf_proxy_build_info{version="', get(self.admin, "/metrics")[2])
        status, headers, text = get(self.admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode() + text)
        # Every request the proxy served is in its log; the admin's own are not.
        self.assertEqual(len(self.px.wait_log(5)), 5)
        m = self.wait_metric("awf_proxy_log_lines_written_total{%s}" % fd, 5)
        self.assertEqual(m["awf_proxy_log_lines_written_total{%s}" % fd], 5)

    def test_dns_counters(self):
        # allowed.test comes from the hosts file; a name the hosts file lacks goes to the
        # (closed) DNS server and fails.
        self.curl("http://%s:%d/small" % (ALLOWED, self.up.http), proxy=self.px)
        self.curl("http://nowhere.%s:%d/small" % (ALLOWED, self.up.http), proxy=self.px)
        m = self.wait_metric("awf_proxy_dns_failures_total", 1)
        self.assertEqual(m["awf_proxy_dns_failures_total"], 1, m)
        self.assertEqual(m["awf_proxy_dns_hosts_file_hits_total"], 1, m)
        self.assertEqual(m["awf_proxy_dns_cache_misses_total"], 1, m)

    def test_health_probe_counted_not_logged(self):
        for _ in range(3):
            probe(self.px)
        m = self.wait_metric("awf_proxy_health_probes_total", 3)
        self.assertEqual(m["awf_proxy_health_probes_total"], 3)
        # A client that sent something is no probe: logged as Squid does.
        s = socket.create_connection(self.px.addrs[0], awf.WAIT)
        s.sendall(b"GET ")
        s.close()
        lines = self.px.wait_log(1)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("NONE_NONE", lines[0])
        self.assertEqual(self.px.stop(), 0)
        self.assertEqual(len(self.px.log_lines()), 1, self.px.log_lines())

    def test_healthz_and_status(self):
        status, _, body = get(self.admin, "/healthz")
        self.assertEqual((status, body), (200, "ok\n"))
        status, headers, body = get(self.admin, "/status")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        st = json.loads(body)
        self.assertEqual(st["policy"]["source"], "flags")
        self.assertRegex(st["policy"]["sha256"], r"^[0-9a-f]{64}$")
        self.assertEqual(st["listeners"], ["127.0.0.1:%d" % self.px.port])
        self.assertEqual(st["event_loops"], 2)
        self.assertTrue(st["healthy"])
        self.assertGreaterEqual(st["uptime_seconds"], 0)
        for k in ("requests", "denied", "connections_open", "tunnels_open", "reloads"):
            self.assertIn(k, st["counters"])
        self.assertEqual(get(self.admin, "/nope")[0], 404)

    def test_healthz_503_while_draining(self):
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.echo]),
                        "--admin", "127.0.0.1:0", "--shutdown-drain", "20s")
        admin = admin_addr(px)
        t = awf.tunnel(px, "%s:%d" % (ALLOWED, self.up.echo))
        self.addCleanup(t.close)
        self.assertEqual(get(admin, "/healthz")[0], 200)
        px.p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + awf.WAIT
        while get(admin, "/healthz")[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(get(admin, "/healthz"), (503, get(admin, "/healthz")[1], "draining\n"))
        t.close()  # the last connection gone: the drain ends, the admin goes with the process
        self.assertEqual(px.stop(), 0)

    def test_reload_counted_and_hash_changes(self):
        path = self.write("p.yml", "version: 1\nallow: [a.test]\n")
        px = self.proxy("--policy", path, "--admin", "127.0.0.1:0")
        admin = admin_addr(px)
        before = json.loads(get(admin, "/status")[2])
        self.assertEqual(before["policy"]["source"], path)
        self.write("p.yml", "version: 1\nallow: [b.test]\n")
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        self.assertIsNotNone(px.wait_line("policy reloaded", start=start), px.stderr)
        self.write("p.yml", "version: 1\nallow: [\"bad entry\"]\n")
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        self.assertIsNotNone(px.wait_line("reload refused", start=start), px.stderr)
        after = json.loads(get(admin, "/status")[2])
        self.assertNotEqual(before["policy"]["sha256"], after["policy"]["sha256"])
        m = parse_metrics(get(admin, "/metrics")[2])
        self.assertEqual((m["awf_proxy_reloads_total"], m["awf_proxy_reload_failures_total"]),
                         (1, 1))

    def test_admin_paths_on_proxy_listener_are_proxy_traffic(self):
        for path in ("/metrics", "/healthz", "/status"):
            r = awf.raw_request(self.px, b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                                % (path.encode(), self.px.port))
            self.assertIsNotNone(r)
            self.assertNotEqual(r.status, 200, r)
            self.assertNotIn(b"awf_proxy_", r.body)
        self.assertEqual(len(self.px.wait_log(3)), 3)


class AdminLogTest(awf.TestCase):
    def test_losing_log_lines_is_unhealthy_and_counted(self):
        # /dev/full: every write fails with ENOSPC, as on a full disk.
        px = self.proxy("--admin", "127.0.0.1:0", "--access-log", "squid:/dev/full")
        admin = admin_addr(px)
        self.assertEqual(get(admin, "/healthz")[0], 200)
        self.assertDenied(self.curl("http://evil.test/", proxy=px))
        deadline = time.monotonic() + awf.WAIT
        while get(admin, "/healthz")[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(get(admin, "/healthz")[1:][1], "losing access log lines\n")
        m = parse_metrics(get(admin, "/metrics")[2])
        fd = 'output="0",path="%s"' % px.log_paths["firewall_detailed"]
        self.assertEqual(m['awf_proxy_log_lines_written_total{%s}' % fd], 1, m)
        self.assertEqual(m['awf_proxy_log_lines_dropped_total{%s}' % fd], 0, m)
        self.assertEqual(m['awf_proxy_log_lines_dropped_total{output="1",path="/dev/full"}'], 1)
        self.assertEqual(m['awf_proxy_log_output_failing{output="1",path="/dev/full"}'], 1)
        self.assertEqual(m["awf_proxy_log_healthy"], 0)
        self.assertFalse(json.loads(get(admin, "/status")[2])["healthy"])


class AdminConfigTest(awf.TestCase):
    def test_off_by_default(self):
        px = self.proxy()
        self.assertNotIn("admin on", px.stderr)

    def test_yaml_admin_key(self):
        path = self.write("p.yml", "version: 1\nallow: [a.test]\nadmin: \"127.0.0.1:0\"\n")
        px = self.proxy("--policy", path)
        self.assertEqual(get(admin_addr(px), "/healthz")[0], 200)
        p = self.cli("check", "--policy", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('admin: "127.0.0.1:0"', p.stdout)

    def test_admin_on_a_proxy_address_is_refused(self):
        port = awf.free_port()
        for listen, admin in (("127.0.0.1:%d" % port, "127.0.0.1:%d" % port),
                              ("0.0.0.0:%d" % port, "127.0.0.1:%d" % port),
                              ("127.0.0.1:%d" % port, "0.0.0.0:%d" % port),
                              ("[::1]:%d" % port, "[::]:%d" % port)):
            for cmd in ("check", "run"):
                p = self.cli(cmd, "--listen", listen, "--admin", admin)
                self.assertEqual(p.returncode, 2, (listen, admin, p.stderr))
                self.assertIn("admin address %s overlaps the proxy listener %s" % (admin, listen),
                              p.stderr)
        p = self.cli("check", "--dns-listen", "127.0.0.1:%d" % port,
                     "--admin", "127.0.0.1:%d" % port)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("DNS forwarder", p.stderr)
        # Another port, or the other family on the wildcard, is fine.
        p = self.cli("check", "--listen", "[::]:%d" % port, "--admin", "0.0.0.0:%d" % port)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_admin_address(self):
        p = self.cli("check", "--admin", "localhost")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--admin", p.stderr)


if __name__ == "__main__":
    import unittest

    unittest.main()

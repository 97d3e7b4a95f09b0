"""Signals: SIGTERM/SIGINT exit 0 with every log line written, open connections included;
SIGUSR1 reopens log files after a rename (logrotate); SIGHUP reloads the policy from the same
file and flags, and a bad file keeps the running policy (SPEC §6, §7; the CLI contract)."""

import hashlib
import os
import re
import signal
import socket
import time
import unittest

import awf
from awf import ALLOWED, OTHER, assert_fields, pattern


class ShutdownTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http, self.up.echo],
                                                      opaque=[self.up.echo]))
        self.base = "http://%s:%d" % (ALLOWED, self.up.http)

    def test_sigterm_exits_0_with_logs_flushed(self):
        for _ in range(5):
            r = self.curl(self.base + "/small", proxy=self.px)
            self.assertEqual(r.code, 200, r)
        self.assertDenied(self.curl("http://evil.test/", proxy=self.px))
        rc = self.px.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, self.px.stderr)
        lines = self.px.log_lines()
        self.assertEqual(len(lines), 6, lines)
        entries = [awf.parse_fd(self, l) for l in lines]
        for e in entries[:5]:
            assert_fields(self, e, status=200, tag="TCP_MISS", url=self.base + "/small")
        assert_fields(self, entries[5], status=403, tag="TCP_DENIED")

    def test_sigint_exits_0(self):
        r = self.curl(self.base + "/small", proxy=self.px)
        self.assertEqual(r.code, 200, r)
        self.assertEqual(self.px.stop(signal.SIGINT), 0, self.px.stderr)
        self.assertEqual(len(self.px.log_lines()), 1)

    def test_sigterm_with_open_tunnel_and_idle_client(self):
        # An open tunnel and an idle keep-alive client do not hold the exit; the tunnel is
        # closed and logged once.
        t = awf.connect(self.px)
        self.addCleanup(t.close)
        hp = ("%s:%d" % (ALLOWED, self.up.echo)).encode()
        t.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp))
        rd = awf.Reader(t)
        self.assertEqual(rd.response(head_only=True).status, 200)
        t.sendall(b"x")
        self.assertEqual(rd.buf or t.recv(10), b"x")  # the tunnel is up end to end
        idle = awf.connect(self.px)
        self.addCleanup(idle.close)
        idle.sendall(b"GET %s/small HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                     % (self.base.encode(), ALLOWED.encode(), self.up.http))
        self.assertEqual(awf.Reader(idle).response().body, pattern(100))
        rc = self.px.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, self.px.stderr)
        entries = [awf.parse_fd(self, l) for l in self.px.log_lines()]
        self.assertEqual(len(entries), 2, [e["line"] for e in entries])
        tunnels = [e for e in entries if e["method"] == "CONNECT"]
        self.assertEqual(len(tunnels), 1)
        assert_fields(self, tunnels[0], status=200, url=hp.decode(),
                      tag=("TCP_TUNNEL", "TCP_TUNNEL_ABORTED"))
        # The proxy closed both connections.
        t.settimeout(awf.WAIT)
        self.assertEqual(awf.recv_all(t), b"")

    def test_drain_lets_a_tunnel_finish(self):
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.echo],
                                                 opaque=[self.up.echo]),
                        "--shutdown-drain", "10s")
        hp = "%s:%d" % (ALLOWED, self.up.echo)
        t = awf.tunnel(px, hp)
        self.addCleanup(t.close)
        t.sendall(b"before")
        self.assertEqual(t.recv(100), b"before")
        px.p.send_signal(signal.SIGTERM)
        # No new connections once SIGTERM arrived (poll: the signal is handled asynchronously).
        deadline = time.monotonic() + awf.WAIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", px.port), 1).close()
            except (ConnectionRefusedError, ConnectionResetError):
                # Reset: with several loops, a connection queued on a listener that closes
                # meanwhile is reset by the kernel; either way nothing new is served.
                break
            self.assertLess(time.monotonic(), deadline, "still accepting after SIGTERM")
            time.sleep(0.05)
        t.sendall(b"during drain")  # the open tunnel still works
        self.assertEqual(t.recv(100), b"during drain")
        t.shutdown(socket.SHUT_WR)
        self.assertEqual(awf.recv_all(t), b"<eof>")
        t.close()
        self.assertEqual(px.stop(timeout=60), 0, px.stderr)
        entries = [awf.parse_fd(self, l) for l in px.log_lines()]
        # Probe connections accepted before the signal was handled may be logged as NONE_NONE.
        (e,) = [e for e in entries if e["tag"] != "NONE_NONE"]
        assert_fields(self, e, method="CONNECT", status=200, url=hp, tag="TCP_TUNNEL")

    def test_sigusr1_reopens_log(self):
        path = self.px.log_paths["firewall_detailed"]
        r = self.curl(self.base + "/small", proxy=self.px)
        self.assertEqual(r.code, 200)
        self.assertEqual(len(self.px.wait_log(1)), 1)
        os.rename(path, path + ".1")
        self.px.p.send_signal(signal.SIGUSR1)
        # The reopen is asynchronous: keep making requests until one lands in a new file.
        sent = 1
        for _ in range(200):
            r = self.curl(self.base + "/small", proxy=self.px)
            self.assertEqual(r.code, 200)
            sent += 1
            if os.path.exists(path) and self.px.wait_log(1, timeout=1):
                break
        self.assertTrue(os.path.exists(path), "SIGUSR1 did not reopen the log")
        self.assertEqual(self.px.stop(), 0)
        with open(path + ".1") as f:
            old = [l for l in f.read().split("\n") if l]
        new = self.px.log_lines()
        self.assertGreaterEqual(len(old), 1)
        self.assertGreaterEqual(len(new), 1)
        self.assertEqual(len(old) + len(new), sent, "no line lost or doubled across the reopen")
        for line in old + new:
            assert_fields(self, awf.parse_fd(self, line), status=200, tag="TCP_MISS")


class ReloadTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)

    def url(self, host):
        return "http://%s:%d/small" % (host, self.up.http)

    def reload(self, px, expect):
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        m = px.wait_line(r"policy reloaded|reload refused", start=start)
        self.assertIsNotNone(m, "no reload message on stderr: " + px.stderr)
        self.assertEqual(m.group(0), expect, px.stderr)

    def test_reload_list_file(self):
        allow = self.write("allow.txt", ALLOWED + "\n")
        px = self.proxy("--allow-domains-file", allow, "--allow-ranges", "127.0.0.0/8",
                        "--allow-ports", str(self.up.http))
        self.assertDenied(self.curl(self.url(OTHER), proxy=px))
        self.write("allow.txt", "%s\n%s\n" % (ALLOWED, OTHER))
        self.reload(px, "policy reloaded")
        r = self.curl(self.url(OTHER), proxy=px)
        self.assertEqual((r.code, r.body), (200, pattern(100)), r)
        # A bad file is refused with its position, and the running policy stays.
        self.write("allow.txt", "%s\n*.*.com\n" % ALLOWED)
        self.reload(px, "reload refused")
        self.assertRegex(px.stderr, r"awf-proxy: %s:2:1: \S" % allow.replace(".", r"\."))
        r = self.curl(self.url(OTHER), proxy=px)
        self.assertEqual(r.code, 200, r)
        self.assertTrue(px.running())
        self.assertEqual(px.stop(), 0)
        entries = [awf.parse_fd(self, l) for l in px.log_lines()]
        self.assertEqual([(e["status"], e["tag"]) for e in entries],
                         [(403, "TCP_DENIED"), (200, "TCP_MISS"), (200, "TCP_MISS")])

    def test_reload_yaml_policy(self):
        text, _ = awf.policy_yaml(allow=[ALLOWED])
        path = self.write("policy.yaml", text)
        px = self.proxy("-p", path, "--allow-ranges", "127.0.0.0/8",
                        "--allow-ports", str(self.up.http))
        self.assertEqual(self.curl(self.url(ALLOWED), proxy=px).code, 200)
        self.assertDenied(self.curl(self.url(OTHER), proxy=px))
        text, _ = awf.policy_yaml(allow=[OTHER])
        self.write("policy.yaml", text)
        self.reload(px, "policy reloaded")
        self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 200)
        self.assertDenied(self.curl(self.url(ALLOWED), proxy=px))
        self.write("policy.yaml", "version: 1\ndomains: [unclosed\n")
        self.reload(px, "reload refused")
        self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 200)
        self.assertEqual(px.stop(), 0)
        entries = [awf.parse_fd(self, l) for l in px.log_lines()]
        self.assertEqual([e["status"] for e in entries], [200, 403, 200, 403, 200])

    def test_reload_reaches_every_thread(self):
        allow = self.write("allow.txt", ALLOWED + "\n")
        px = self.proxy("--allow-domains-file", allow, "--allow-ranges", "127.0.0.0/8",
                        "--allow-ports", str(self.up.http), "--threads", "2")
        self.write("allow.txt", OTHER + "\n")
        self.reload(px, "policy reloaded")
        # New connections may land on either loop; every one sees the new policy.
        for _ in range(8):
            self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 200)
            self.assertDenied(self.curl(self.url(ALLOWED), proxy=px))
        self.assertEqual(len(px.entries(16)), 16)

    def test_reload_keeps_flags(self):
        # Flags are re-applied on reload: the --allow-domains entry stays allowed.
        allow = self.write("allow.txt", "\n")
        px = self.proxy("--allow-domains-file", allow, "--allow-domains", ALLOWED,
                        "--allow-ranges", "127.0.0.0/8", "--allow-ports", str(self.up.http))
        self.write("allow.txt", OTHER + "\n")
        self.reload(px, "policy reloaded")
        self.assertEqual(self.curl(self.url(ALLOWED), proxy=px).code, 200)
        self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 200)
        self.assertEqual(len(px.entries(2)), 2)

    def test_reload_rereads_hosts_file(self):
        # The hosts file is read again and handed to every loop; the message says what was
        # applied: the policy's hash, and the hosts file's counts and hash (sha256sum's).
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, OTHER, ports=[self.up.http]),
                        "--threads", "2", hosts={ALLOWED: "127.0.0.1"})
        self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 503)  # not in the file
        text = "127.0.0.1 %s\n127.0.0.1 %s\n::1 %s\n" % (ALLOWED, OTHER, OTHER)
        with open(px.hosts_file, "w") as f:
            f.write(text)
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        m = px.wait_line(r"policy reloaded.*", start=start)
        self.assertIsNotNone(m, px.stderr)
        for _ in range(8):  # new connections land on either loop
            self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 200)
        sha = hashlib.sha256(text.encode()).hexdigest()
        self.assertRegex(m.string, awf.STAMP + re.escape(
            "awf-proxy: policy reloaded from flags: sha256 ") + "[0-9a-f]{64}" + re.escape(
            " (unchanged); hosts file %s: 2 names, 3 addresses, sha256 %s (changed)" % (
                px.hosts_file, sha)))
        self.assertNotIn("needs a restart", px.stderr)
        # The same file again: nothing changed, and the message says so.
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        m = px.wait_line(r"policy reloaded.*", start=start)
        self.assertIsNotNone(m, px.stderr)
        self.assertTrue(m.string.endswith("sha256 %s (unchanged)" % sha), m.string)
        # A hosts file that became a directory refuses the whole reload, naming it.
        os.unlink(px.hosts_file)
        os.mkdir(px.hosts_file)
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        self.assertIsNotNone(px.wait_line("reload refused", start=start), px.stderr)
        self.assertIn("hosts file %s: Is a directory" % px.hosts_file, px.stderr)
        self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 200)
        self.assertEqual(px.stop(), 0, px.stderr)

    def test_reload_names_what_needs_a_restart(self):
        # Settings made at start (threads, the resolver's TTLs, log outputs) are named, each
        # by its policy key, every reload until a restart; the rest of the policy applies.
        path = self.write("policy.yaml", awf.policy_yaml(allow=[ALLOWED])[0] + "threads: 1\n")
        px = self.proxy("-p", path, "--allow-ranges", "127.0.0.0/8",
                        "--allow-ports", str(self.up.http))
        self.assertDenied(self.curl(self.url(OTHER), proxy=px))
        self.write("policy.yaml", awf.policy_yaml(allow=[OTHER])[0] +
                   "threads: 2\ndns:\n  min_ttl: 10s\nlogs:\n  strip_query: false\n")
        for _ in range(2):
            start = len(px.lines_err)
            px.p.send_signal(signal.SIGHUP)
            m = px.wait_line(r"policy reloaded.*", start=start)
            self.assertIsNotNone(m, px.stderr)
            self.assertIn("policy reloaded from %s: sha256 " % path, m.string)
            restart = [l for l in px.lines_err[start:] if "needs a restart" in l]
            self.assertEqual(len(restart), 1, px.stderr)
            self.assertRegex(restart[0], awf.STAMP + re.escape(
                "awf-proxy: reload: needs a restart, running with the start-up values: "
                "logs.strip_query, threads, dns.min_ttl") + "$")
        self.assertEqual(self.curl(self.url(OTHER), proxy=px).code, 200)
        self.assertDenied(self.curl(self.url(ALLOWED), proxy=px))


class StartupFailureTest(awf.TestCase):
    def test_invalid_policy_does_not_start(self):
        p = self.cli("--listen", "127.0.0.1:0", "--allow-domains", "*.*.com")
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, awf.STAMP + r"awf-proxy: --allow-domains: \S")
        self.assertNotIn("listening", p.stderr)

    def test_address_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            p = self.cli("--listen", "127.0.0.1:%d" % port, "--allow-domains", ALLOWED,
                         "--access-log", os.path.join(self.tmp, "a.log"))
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("127.0.0.1:%d" % port, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

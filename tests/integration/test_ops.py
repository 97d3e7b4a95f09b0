"""Rough edges a new user hits (issue 14): how --set merges with the default policy, misspelt
log formats, --pid-file with the logrotate example of log/README.md run as written, and
HTTP/1.0 upstream replies relayed with an HTTP/1.1 status line."""

import os
import re
import signal
import subprocess

import awf
from awf import ALLOWED


class MergeRuleTest(awf.TestCase):
    def test_set_allow_replaces_the_default_like_allow_domains(self):
        for args in (["--set", "allow=example.com"], ["--allow-domains", "example.com"]):
            p = self.cli("check", *args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn('"example.com"', p.stdout)
            self.assertNotIn("github.com", p.stdout, args)
        # --allow-ports and --allow-ranges keep the default (README's rule).
        for args in (["--allow-ports", "8080"], ["--allow-ranges", "10.0.0.0/8"]):
            p = self.cli("check", *args)
            self.assertIn('"github.com"', p.stdout, args)

    def test_misspelt_log_format_is_an_error(self):
        p = self.cli("check", "--access-log", "audit_json:-")
        self.assertEqual(p.returncode, 2)
        self.assertIn('awf-proxy: --access-log: unknown log format "audit_json": want '
                      'firewall_detailed, audit_jsonl, squid', p.stderr)
        p = self.cli("check", "--access-log", "logformat=hello:-")
        self.assertEqual(p.returncode, 2)
        self.assertIn('logformat "hello" has no % code', p.stderr)
        path = self.write("p.yml", "version: 1\nlogs:\n  outputs:\n    - {format: squidd, "
                                   "path: \"-\"}\n")
        p = self.cli("check", "--policy", path)
        self.assertEqual(p.returncode, 2)
        self.assertIn('%s:4:7: logs.outputs: unknown log format "squidd"' % path, p.stderr)

    def test_yaml_allow_must_be_a_list_of_names(self):
        for text, want in (("allow: github.com", "2:8: allow: expected a list"),
                           ("allow: [1]", "2:9: allow: 1 is a number, not a domain")):
            path = self.write("p.yml", "version: 1\n%s\n" % text)
            p = self.cli("check", "--policy", path)
            self.assertEqual(p.returncode, 2, text)
            self.assertIn(path + ":" + want, p.stderr)


def readme_logrotate():
    """The logrotate block of log/README.md, exactly as written there."""
    with open(os.path.join(awf.SOURCE_DIR, "log", "README.md")) as f:
        text = f.read()
    m = re.search(r"\n```\n(/var/log/squid/access\.log .*?\n)```\n", text, re.S)
    if m is None:
        raise AssertionError("no logrotate example in log/README.md")
    return m.group(1)


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class PidFileLogrotateTest(awf.TestCase):
    def test_pid_file_written_and_removed(self):
        pid_file = os.path.join(self.tmp, "awf.pid")
        px = self.proxy("--pid-file", pid_file)
        with open(pid_file) as f:
            self.assertEqual(int(f.read()), px.p.pid)
        self.assertEqual(px.stop(), 0)
        self.assertFalse(os.path.exists(pid_file))

    def test_pid_file_is_there_with_the_readiness_line(self):
        """Whoever waits for the readiness line (a supervisor, this suite) may read the pid file
        at once: it is written first. strace slows the pid file's open by 0.5 s, so a pid file
        written after the line would be missing here."""
        strace = awf.need_tool("strace")
        pid_file = os.path.join(self.tmp, "awf.pid")
        px = self.proxy("--pid-file", pid_file, wrap=[
            "env", "ASAN_OPTIONS=detect_leaks=0",  # LeakSanitizer cannot run traced
            strace, "-f", "-qq", "-o", "/dev/null", "-P", pid_file, "-e", "trace=openat",
            "-e", "inject=openat:delay_enter=500000"])
        # strace detaches when it is stopped and the proxy would run on: the proxy is stopped
        # by its own pid, found as strace's child, whatever happens below.
        child = subprocess.run(["pgrep", "-P", str(px.p.pid)], capture_output=True, text=True)
        pid = int(child.stdout.split()[0])
        self.addCleanup(kill_quietly, pid)
        self.assertTrue(os.path.exists(pid_file), "no pid file at the readiness line")
        with open(pid_file) as f:
            self.assertEqual(int(f.read()), pid)
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(px.stop(sig=0), 0, px.stderr)
        self.assertFalse(os.path.exists(pid_file))

    def test_readme_logrotate_example_runs_as_written(self):
        logrotate = awf.need_tool("logrotate")
        logdir = os.path.join(self.tmp, "log")
        os.mkdir(logdir)
        pid_file = os.path.join(self.tmp, "awf-proxy.pid")
        conf = readme_logrotate().replace("/var/log/squid/", logdir + "/")
        conf = conf.replace("/run/awf-proxy.pid", pid_file)
        conf_path = self.write("logrotate.conf", conf)
        up = self.upstream(tls=False)
        access, audit = os.path.join(logdir, "access.log"), os.path.join(logdir, "audit.jsonl")
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.http]), "--pid-file",
                        pid_file, "--access-log", access, "--access-log", "audit_jsonl:" + audit,
                        logs=())
        url = "http://%s:%d/small" % (ALLOWED, up.http)

        lines, wait_lines = awf.file_lines, awf.wait_file_lines
        self.assertEqual(self.curl(url, proxy=px).code, 200)
        self.assertEqual(len(wait_lines(access, 1)), 1)
        state = os.path.join(self.tmp, "logrotate.state")
        p = subprocess.run([logrotate, "-f", "-s", state, conf_path], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(len(lines(access + ".1")), 1)   # delaycompress: .1 stays plain
        self.assertEqual(len(lines(audit + ".1")), 1)
        # The proxy got SIGUSR1 from the pid file and writes to new files.
        self.assertEqual(self.curl(url, proxy=px).code, 200)
        self.assertEqual(len(wait_lines(access, 1)), 1, px.stderr)
        self.assertEqual(len(wait_lines(audit, 1)), 1, px.stderr)
        self.assertEqual(len(lines(access + ".1")), 1)
        self.assertEqual(px.stop(), 0)


class HostsFileTest(awf.TestCase):
    def test_directory_as_hosts_file_fails_check_and_run_naming_it(self):
        for cmd in ("check", "run"):
            p = self.cli(cmd, "--listen", "127.0.0.1:0", "--hosts-file", self.tmp)
            self.assertEqual(p.returncode, 2, (cmd, p.stderr))
            self.assertIn("awf-proxy: hosts file %s: Is a directory" % self.tmp, p.stderr)


class StderrTest(awf.TestCase):
    def test_every_run_line_has_a_timestamp(self):
        px = self.proxy()
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        self.assertIsNotNone(px.wait_line("policy reloaded", start=start), px.stderr)
        self.assertEqual(px.stop(), 0)
        lines = [l for l in px.stderr.splitlines() if l]
        self.assertGreaterEqual(len(lines), 2, lines)
        for line in lines:
            self.assertRegex(line, awf.STAMP + "awf-proxy: ")
        # One-shot commands print bare "awf-proxy: WHERE: reason" lines, as compilers do.
        p = self.cli("check", "--allow-domains", "a b")
        self.assertRegex(p.stderr, r"^awf-proxy: --allow-domains: ")

    def test_readiness_line_on_stderr_with_cache_log(self):
        cache_log = os.path.join(self.tmp, "cache.log")
        px = self.proxy("--set", "cache_log=" + cache_log)  # waits for it on stderr
        self.assertEqual(px.stop(), 0)
        with open(cache_log) as f:
            text = f.read()
        self.assertRegex(text, awf.STAMP[1:] + r"awf-proxy: listening on 127\.0\.0\.1:%d\n"
                         % px.port)


class Http10Server(awf.ThreadServer):
    """Answers each request as an HTTP/1.0 server: a body with a length, or one ended by the
    close (/noclen)."""

    def serve(self, c, conn_no):
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d:
                return
            data += d
        if b" /noclen " in data.split(b"\r\n")[0] or b"/noclen HTTP" in data:
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close")
        else:
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")


class Http10Test(awf.TestCase):
    def test_http10_reply_goes_out_as_http11_with_its_framing(self):
        srv = Http10Server(self)
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[srv.port]))
        base = "http://%s:%d" % (ALLOWED, srv.port)
        r = awf.raw_request(px, b"GET %s/x HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                            % (base.encode(), ALLOWED.encode(), srv.port))
        self.assertEqual((r.version, r.status, r.body), ("HTTP/1.1", 200, b"hello"), r)
        s = awf.connect(px)
        self.addCleanup(s.close)
        s.sendall(b"GET %s/noclen HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                  % (base.encode(), ALLOWED.encode(), srv.port))
        data = awf.recv_all(s)  # ends at the close, as the server's message did
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
        self.assertTrue(data.endswith(b"\r\n\r\nuntil the close"), data)
        self.assertNotIn(b"Content-Length", data)
        self.assertNotIn(b"chunked", data)


if __name__ == "__main__":
    import unittest

    unittest.main()

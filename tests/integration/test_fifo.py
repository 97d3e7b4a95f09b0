"""FIFOs given as log, config or pid files never hold up start-up or the event loop.

A FIFO that nobody has opened for reading yet (a log shipper started after the proxy) used to
block open(2) forever: the access logs already coped (tests/soak/test_soak_logs.py); these cover
the DNS forwarder's query log, cache_log, the pid file, and a FIFO given as the policy or the
hosts file (refused with its name, never waited on).
"""

import os
import re
import signal
import time
import unittest

import awf

# A proxy that does not block starts in well under this, even under the sanitizers.
READY_S = 5.0


def read_lines(tc, fd, n):
    """n lines from a non-blocking FIFO reader, waiting up to awf.WAIT for them."""
    lines = awf.fifo_lines(fd, n)
    tc.assertGreaterEqual(len(lines), n, lines)
    return lines


class FifoTestCase(awf.TestCase):
    def fifo(self, name):
        path = os.path.join(self.tmp, name)
        os.mkfifo(path)
        return path

    def start(self, *args):
        """The proxy, which must be listening within READY_S (an open(2) that blocks on a FIFO
        never gets there), and serve a request."""
        t0 = time.monotonic()
        px = awf.Proxy(self, *args, ready=False)
        deadline = t0 + READY_S
        while not px.wait_line(r"awf-proxy: listening on ", timeout=0.2):
            if time.monotonic() > deadline or not px.running():
                rc = px.stop(sig=signal.SIGKILL, timeout=5)
                self.fail("not listening within %.0f s (exit %s): %s" % (READY_S, rc, px.stderr))
        px.wait_ready()
        res = self.curl("http://%s/" % awf.OTHER, proxy=px)  # denied: served without upstream
        self.assertDenied(res)
        return px


class DnsLogFifoTest(FifoTestCase):
    def dns_proxy(self, fifo):
        px = self.start("--dns-listen", "127.0.0.1:0", "--set", "dns.forwarder.log=" + fifo)
        m = px.wait_line(r"dns forwarder on 127\.0\.0\.1:(\d+) ")
        self.assertIsNotNone(m, px.stderr)
        return px, int(m.group(1))

    def test_fifo_without_reader_starts_serves_and_delivers_once_read(self):
        fifo = self.fifo("dns.fifo")
        px, port = self.dns_proxy(fifo)
        self.assertTrue(px.wait_line(r"dns\.forwarder\.log %s: no reader on this FIFO yet; lines "
                                     r"wait" % re.escape(fifo), timeout=0), px.stderr)
        self.assertEqual(awf.dns_query("127.0.0.1", port, "denied.example"), 5)  # REFUSED
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, rfd)
        lines = read_lines(self, rfd, 1)
        self.assertRegex(lines[0], r" denied\.example A denied REFUSED 0$")
        self.assertTrue(px.wait_line(awf.STAMP + r"awf-proxy: dns\.forwarder\.log %s: a reader "
                                     r"opened the FIFO; writing$" % re.escape(fifo)), px.stderr)
        # SIGUSR1 reopens it without waiting (the reader is there now) and lines keep coming.
        px.p.send_signal(signal.SIGUSR1)
        self.assertEqual(awf.dns_query("127.0.0.1", port, "again.example"), 5)
        self.assertRegex(read_lines(self, rfd, 1)[0], r" again\.example A denied")
        self.assertEqual(px.stop(), 0, px.stderr)

    def test_sigusr1_after_the_reader_left_does_not_block_the_loop(self):
        # The reopen runs on the event loop: a blocking open(2) of a FIFO whose reader has gone
        # would stop it answering anything. It keeps the old descriptor instead.
        fifo = self.fifo("dns.fifo")
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        px, port = self.dns_proxy(fifo)
        self.assertEqual(awf.dns_query("127.0.0.1", port, "first.example"), 5)
        self.assertRegex(read_lines(self, rfd, 1)[0], r" first\.example A denied")
        os.close(rfd)
        px.p.send_signal(signal.SIGUSR1)
        for name in ("second.example", "third.example"):
            self.assertEqual(awf.dns_query("127.0.0.1", port, name), 5, px.stderr)
        self.assertEqual(self.curl("http://%s/" % awf.OTHER, proxy=px).code, 403)
        self.assertEqual(px.stop(timeout=10), 0, px.stderr)

    def test_sigterm_with_no_reader_exits_and_reports_the_lines_lost(self):
        fifo = self.fifo("dns.fifo")
        px, port = self.dns_proxy(fifo)
        px.p.send_signal(signal.SIGUSR1)  # a reopen with no reader must not block the loop
        for name in ("a.example", "b.example"):
            self.assertEqual(awf.dns_query("127.0.0.1", port, name), 5, px.stderr)
        t0 = time.monotonic()
        self.assertEqual(px.stop(timeout=10), 0, px.stderr)
        self.assertLess(time.monotonic() - t0, 5, px.stderr)
        self.assertRegex(px.stderr, r"(?m)" + awf.STAMP + r"awf-proxy: dns\.forwarder\.log %s: no "
                         r"reader at exit: nobody opened the FIFO; 2 lines lost$" % re.escape(fifo))

    # Enough queries to fill a pipe (64 KiB) and more: long names make lines of ~250 bytes.
    FILL = 320

    def fill_name(self, i):
        return "q%04d.%s.example" % (i, ".".join(["a" * 60] * 3))

    def send_fill(self, port):
        for i in range(self.FILL):
            self.assertEqual(awf.dns_query("127.0.0.1", port, self.fill_name(i)), 5, i)

    def test_sigterm_with_a_reader_that_stopped_reading_exits_and_reports_the_lines_lost(self):
        # The reader opened the FIFO and never reads: the pipe fills. A blocking write would pin
        # a thread-pool thread forever and SIGTERM would wait on it; instead, after 0.5 s more,
        # what the pipe did not take is counted lost, and every line is accounted for.
        fifo = self.fifo("dns.fifo")
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, rfd)
        px, port = self.dns_proxy(fifo)
        self.send_fill(port)
        t0 = time.monotonic()
        self.assertEqual(px.stop(timeout=10), 0, px.stderr[-2000:])
        self.assertLess(time.monotonic() - t0, 5, px.stderr[-2000:])
        m = re.search(r"(?m)" + awf.STAMP + r"awf-proxy: dns\.forwarder\.log %s: the reader "
                      r"stopped reading: (\d+) lines lost at exit$" % re.escape(fifo), px.stderr)
        self.assertIsNotNone(m, px.stderr[-2000:])
        self.assertEqual(px.stderr.count("lines lost at exit"), 1, px.stderr[-2000:])
        lost = int(m.group(1))
        data = b""
        while True:
            try:
                chunk = os.read(rfd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        self.assertGreater(lost, 0)
        self.assertGreater(len(data), 32 << 10)  # the pipe was filled before giving up
        self.assertEqual(data.count(b"\n") + lost, self.FILL)  # every line accounted for

    def test_a_reader_that_stalls_then_resumes_gets_every_line(self):
        fifo = self.fifo("dns.fifo")
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, rfd)
        px, port = self.dns_proxy(fifo)
        self.send_fill(port)  # the pipe is full: lines wait in the proxy
        lines = read_lines(self, rfd, self.FILL)
        self.assertEqual(len(lines), self.FILL)
        for i, line in enumerate(lines):
            self.assertRegex(line, r" %s A denied REFUSED 0$" % re.escape(self.fill_name(i)))
        self.assertEqual(awf.dns_query("127.0.0.1", port, "after.example"), 5)
        self.assertRegex(read_lines(self, rfd, 1)[0], r" after\.example A denied")
        self.assertEqual(px.stop(timeout=10), 0, px.stderr[-2000:])
        self.assertNotIn("lost", px.stderr)


class CacheLogFifoTest(FifoTestCase):
    def test_fifo_without_reader_starts_and_takes_over_stderr_once_read(self):
        fifo = self.fifo("cache.fifo")
        px = self.start("--set", "cache_log=" + fifo)
        self.assertTrue(px.wait_line(r"cache_log %s: no reader on this FIFO yet; diagnostics "
                                     r"stay on stderr" % re.escape(fifo), timeout=0), px.stderr)
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, rfd)
        self.assertTrue(px.wait_line(awf.STAMP + r"awf-proxy: cache_log %s: a reader opened the "
                                     r"FIFO; diagnostics go there from now on$" % re.escape(fifo)),
                        px.stderr)
        px.p.send_signal(signal.SIGHUP)
        line = read_lines(self, rfd, 1)[0]
        self.assertRegex(line, awf.STAMP + r"awf-proxy: policy reloaded from ")
        self.assertEqual(px.stop(), 0, px.stderr)
        self.assertNotIn("policy reloaded", px.stderr)

    def test_sigterm_with_no_reader_exits(self):
        fifo = self.fifo("cache.fifo")
        px = self.start("--set", "cache_log=" + fifo)
        self.assertEqual(px.stop(timeout=10), 0, px.stderr)


class PidFileFifoTest(FifoTestCase):
    def test_fifo_as_pid_file_is_reported_and_start_up_goes_on(self):
        fifo = self.fifo("pid.fifo")
        px = self.start("--pid-file", fifo)
        self.assertIn("pid file %s: No such device or address" % fifo, px.stderr)
        self.assertEqual(px.stop(), 0, px.stderr)
        self.assertTrue(os.path.exists(fifo))  # not ours: left where it was


class InputFifoTest(FifoTestCase):
    def test_policy_fifo_without_writer_is_refused_naming_it(self):
        fifo = self.fifo("policy.fifo")
        for cmd in ("check", "run"):
            p = self.cli(cmd, "--listen", "127.0.0.1:0", "--policy", fifo, timeout=READY_S)
            self.assertEqual(p.returncode, 2, (cmd, p.stderr))
            self.assertIn("%s: cannot read: a FIFO with nothing written to it (no writer)"
                          % fifo, p.stderr)

    def test_policy_from_a_pipe_with_a_writer_is_read(self):
        p = self.cli("check", "--policy", "/dev/stdin", input=b"version: 1\nallow:\n  - example.com\n",
                     timeout=READY_S)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_hosts_fifo_is_refused_naming_it(self):
        fifo = self.fifo("hosts.fifo")
        for cmd in ("check", "run"):
            p = self.cli(cmd, "--listen", "127.0.0.1:0", "--hosts-file", fifo, timeout=READY_S)
            self.assertEqual(p.returncode, 2, (cmd, p.stderr))
            self.assertIn("awf-proxy: hosts file %s: not a regular file" % fifo, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

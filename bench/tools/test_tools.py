"""The bench tools against each other on loopback: what bench/run.sh relies on.

Run by CTest (bench_tools) with AWF_BENCH_UPSTREAM and AWF_BENCH_CLIENT naming the binaries.
Every process a test starts is stopped by the test.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import unittest

UPSTREAM = os.environ.get("AWF_BENCH_UPSTREAM", "awf-bench-upstream")
CLIENT = os.environ.get("AWF_BENCH_CLIENT", "awf-bench-client")


def kv(line):
    return dict(p.split("=", 1) for p in line.split())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream:
    """awf-bench-upstream on an ephemeral loopback port."""

    def __enter__(self):
        self.proc = subprocess.Popen([UPSTREAM, "127.0.0.1:0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("upstream did not start: " + line)
        self.addr = m.group(1)
        self.port = int(self.addr.rsplit(":", 1)[1])
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, err

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def client(*args, timeout=30):
    return subprocess.run([CLIENT, *args], capture_output=True, text=True, timeout=timeout)


class TunnelProxy:
    """A minimal CONNECT proxy in this process, so --tunnel is tested without awf-proxy: it
    answers 200 and relays to the upstream whatever the CONNECT target says (loopback only)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.threads = []
        self.stopped = False
        t = threading.Thread(target=self.accept_loop, daemon=True)
        t.start()

    def accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            head += d
        u = socket.create_connection(("127.0.0.1", self.upstream_port))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        back = threading.Thread(target=pipe, args=(u, c), daemon=True)
        back.start()
        pipe(c, u)
        back.join(timeout=10)
        u.close()
        c.close()

    def close(self):
        self.stopped = True
        self.sock.close()


class TestTools(unittest.TestCase):
    def test_bulk_direct_reads_every_byte(self):
        with Upstream() as up:
            r = client("bulk", "--connect", up.addr, "--bytes", "10000000")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(kv(r.stdout)["bytes"], "10000000")
            rc, err = up.stop()
            self.assertEqual(rc, 0)
            self.assertIn("1 connections", err)

    def test_churn_direct_gets_whole_answers(self):
        with Upstream() as up:
            r = client("churn", "--connect", up.addr, "--seconds", "1", "--clients", "2")
            self.assertEqual(r.returncode, 0, r.stderr)
            res = kv(r.stdout)
            self.assertGreater(int(res["requests"]), 0)
            self.assertEqual(res["errors"], "0")
            up.stop()

    def test_tunnel_modes_through_a_connect_proxy(self):
        with Upstream() as up:
            px = TunnelProxy(up.port)
            try:
                target = "bench.test:%d" % up.port
                r = client("bulk", "--connect", px.addr, "--tunnel", target, "--bytes", "1000000")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(kv(r.stdout)["bytes"], "1000000")
                r = client("churn", "--connect", px.addr, "--tunnel", target, "--seconds", "1")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(kv(r.stdout)["errors"], "0")
            finally:
                px.close()
            up.stop()

    def test_idle_holds_connections_until_sigterm(self):
        with Upstream() as up:
            p = subprocess.Popen([CLIENT, "idle", "--connect", up.addr, "--count", "200"],
                                 stdout=subprocess.PIPE, text=True)
            try:
                self.assertEqual(p.stdout.readline().strip(), "ready 200")
                self.assertIsNone(p.poll())
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=10), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                p.communicate()
            rc, err = up.stop()
            self.assertIn("200 connections", err)

    def test_sink_counts_bytes(self):
        with Upstream() as up:
            with socket.create_connection(("127.0.0.1", up.port)) as s:
                s.sendall(b"SINK\n" + b"x" * 12345)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(s.makefile().readline().strip(), "OK 12345")
            up.stop()

    def test_startup_measures_and_stops_the_command(self):
        port = free_port()
        r = client("startup", "--connect", "127.0.0.1:%d" % port, "--", UPSTREAM,
                   "127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = kv(r.stdout)
        self.assertGreater(float(res["start_ms"]), 0)
        self.assertGreaterEqual(float(res["stop_ms"]), 0)

    def test_refuses_non_loopback_addresses(self):
        r = client("bulk", "--connect", "192.0.2.1:80")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("non-loopback", r.stderr)

    def test_failed_connect_tunnel_says_why(self):
        with Upstream() as up:
            # The upstream is no proxy: it closes on the unknown "CONNECT" command.
            r = client("churn", "--connect", up.addr, "--tunnel", "x:1", "--seconds", "1")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("CONNECT x:1 refused", r.stderr)
            up.stop()


if __name__ == "__main__":
    unittest.main()

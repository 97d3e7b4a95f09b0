"""The bench tools against each other on loopback: what bench/run.sh relies on.

Run by CTest (bench_tools) with AWF_BENCH_UPSTREAM and AWF_BENCH_CLIENT naming the binaries.
Every process a test starts is stopped by the test.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import unittest

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
        self.targets = []  # CONNECT targets, in order
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
        self.targets.append(head.split(b" ")[1].decode())
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

    def test_churn_new_names_total_and_keep_alive(self):
        # bench/bump.sh's first visits: a new name per connection, a fixed number of them, and
        # several GETs per connection.
        with Upstream() as up:
            px = TunnelProxy(up.port)
            try:
                r = client("churn", "--connect", px.addr, "--tunnel", "bench.test:%d" % up.port,
                           "--names", "-x.bench.test", "--total", "5", "--requests", "3",
                           "--clients", "2")
                self.assertEqual(r.returncode, 0, r.stderr)
                res = kv(r.stdout)
                self.assertEqual((res["requests"], res["conns"], res["errors"]), ("15", "5", "0"))
                self.assertEqual(sorted(px.targets),
                                 sorted("n%d-x.bench.test:%d" % (i, up.port) for i in range(5)))
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


def need_tool(name):
    """The path of a tool; a skip on a laptop without it, a failure in CI (CI=true)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            raise AssertionError(name + " is required in CI")
        raise unittest.SkipTest(name + " not installed")
    return path


def report_sh(script):
    """Runs script in bash after sourcing bench/report.sh with empty run state; stdout."""
    prelude = ("set -euo pipefail; declare -A R=() FAIL=() MISSED=() WHY=(); "
               "IDLE_N=1000 IDLE_MANY=9000 BIG_MIB=1024; . %s/report.sh; " % BENCH)
    p = subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    return p.stdout


class TestScripts(unittest.TestCase):
    def test_bench_scripts_pass_shellcheck(self):
        sc = need_tool("shellcheck")
        scripts = sorted(os.path.join(BENCH, f) for f in os.listdir(BENCH) if f.endswith(".sh"))
        self.assertIn(os.path.join(BENCH, "run.sh"), scripts)
        p = subprocess.run([sc, "-S", "style", "-x", *scripts], capture_output=True, text=True,
                           cwd=BENCH)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_cells_are_medians_with_spread(self):
        out = report_sh('R["k awf"]="30 10 20"; cell k awf; cell k squid; MISSED["k squid"]=1; '
                        'cell k squid; R["k squid"]=40; ratio k awf squid')
        self.assertEqual(out.split("\n")[:4], ["20 ±100%", "—", "n/a", "0.50×"])

    def test_verdicts_compare_ratios_and_absolute_figures(self):
        out = report_sh('goal "cpu" 10 50 "<=" 0.25; goal "rps" 30 20 ">=" 2; '
                        'goal "start" 1.5 - "<=" 20; goal "tunnel" "" 7 "<=" 0.33')
        self.assertEqual(out.splitlines(), [
            "- cpu: 10 vs 50 = 0.20 → **met**.",
            "- rps: 30 vs 20 = 1.50 → **not met**.",
            "- start: 1.5 → **met**.",
            "- tunnel: not measured in this run (n/a).",
        ])

    def test_bulk_bound_is_the_ratio_of_cpu_per_gb(self):
        out = report_sh('R["dl_all_cpu_s_gb direct"]=0.3; R["dl_all_cpu_s_gb awf"]=0.6; '
                        'R["dl_cores direct"]=1; R["dl_cores awf"]=1; bulk_bound dl awf')
        self.assertIn("direct 0.3 s, proxied 0.6 s", out)
        self.assertTrue(out.endswith("= 0.50"), out)

    def test_ab_rows_say_whether_a_ratio_is_within_the_noise(self):
        out = report_sh('SIDES=(a b) REPS=3; declare -A LABEL=([a]=A [b]=B); '
                        'R["get_rps a"]="100 110 90"; R["get_rps b"]="70 71 69"; '
                        'R["get_cpu_us a"]="10 11 9"; R["get_cpu_us b"]="10.5 10 11"; '
                        'R["start_ms a"]=20; R["start_ms b"]=30; ab_report')
        rows = {r.split(" | ")[0]: r for r in out.splitlines() if r.startswith("| ")}
        self.assertIn("| 100 ±20% | 70 ±3% | 0.70× | ±20% | outside noise (-30%, worse) |",
                      rows["| Small GET keep-alive (100 B, wrk -c50): req/s"])
        self.assertIn("| 10 ±20% | 10.5 ±10% | 1.05× | ±20% | within noise |",
                      rows["| **Small GET: proxy CPU per request, µs**"])
        self.assertIn("| — | no noise estimate |", rows["| exec to first accepted connection, ms"])
        self.assertNotIn("| Squid", out)


if __name__ == "__main__":
    unittest.main()

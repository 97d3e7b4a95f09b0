"""Harness for awf-proxy's integration tests (Python 3 stdlib only).

Every test gets a temporary directory; every process a test starts (the proxy, the test upstream,
dnsmasq, nginx) is stopped by a cleanup registered when it starts, so nothing is left behind even
when the test fails. Only loopback addresses are used. Nothing here asserts on timing: waits are
generous upper bounds that only turn a hang into a failure.

Environment: AWF_PROXY (the binary), AWF_SOURCE_DIR, AWF_BUILD_DIR (set by CTest), CI=true
(missing tools fail instead of skipping), AWF_KEEP_TMP=1 (keep the temporary directories).
"""

import ctypes
import json
import os
import re
import select
import shutil
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SOURCE_DIR = os.environ.get(
    "AWF_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
)
TOOLS_DIR = os.path.join(SOURCE_DIR, "tests", "tools")
sys.path.insert(0, TOOLS_DIR)
from upstream import pattern  # noqa: E402  (the upstream's byte pattern, for exact comparisons)

import awf_tls  # noqa: E402
from awf_logs import (  # noqa: E402,F401  (re-exported: tests use awf.parse_fd etc.)
    FD_RE, JSONL_KEYS, PARSERS, SQUID_RE, assert_fields, parse_fd, parse_jsonl, parse_squid)

CI = os.environ.get("CI", "").lower() == "true"
# How every line `awf-proxy run` writes on stderr (or to cache_log) starts: an ISO-8601 UTC time.
STAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
WAIT = 20.0  # upper bound for anything that should happen "soon"; never an assertion on speed

# Names the tests use; all resolve to loopback through the proxy's hosts file (or dnsmasq).
ALLOWED = "allowed.test"
OTHER = "other.test"


# ---------------------------------------------------------------- environment and tools


def need_tool(name):
    """Path of a tool; skips the test when missing, fails under CI=true."""
    path = shutil.which(name) or (
        os.path.join("/usr/sbin", name) if os.path.exists(os.path.join("/usr/sbin", name)) else None
    )
    if path is None:
        msg = "%s is not installed" % name
        if CI:
            raise AssertionError(msg + " (CI=true: missing tools are failures)")
        raise unittest.SkipTest(msg)
    return path


def proxy_binary():
    path = os.environ.get("AWF_PROXY")
    if not path:
        build = os.environ.get("AWF_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
        path = os.path.join(build, "awf-proxy")
    if not os.access(path, os.X_OK):
        raise AssertionError("awf-proxy binary not found at %s (set AWF_PROXY)" % path)
    return path


def clean_env(extra=None):
    """The environment for child processes: no proxy variables leaking in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    if extra:
        env.update(extra)
    return env


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    """A port that was free a moment ago (for tools that cannot bind port 0 themselves)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_pair(host="127.0.0.1"):
    """A port free for both TCP and UDP a moment ago (dnsmasq binds both). Taken below the
    kernel's ephemeral range: an ephemeral UDP port is often held by a TCP connection (or its
    TIME_WAIT) when many connections were made recently, and dnsmasq's TCP bind would fail."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(20000, 32000)
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as t, \
                    socket.socket(fam, socket.SOCK_DGRAM) as u:
                t.bind((host, port))
                u.bind((host, port))
            return port
        except OSError:
            continue
    return free_port(socket.SOCK_DGRAM, host)


def closed_port():
    """A loopback TCP port nobody listens on (connecting gets ECONNREFUSED)."""
    return free_port()


_certs = {}


def certs():
    """(cert, key) for allowed.test and friends, made once per process with openssl."""
    if "pair" not in _certs:
        openssl = need_tool("openssl")
        d = tempfile.mkdtemp(prefix="awf-certs-")
        import atexit

        atexit.register(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        san = "DNS:allowed.test,DNS:*.allowed.test,DNS:other.test,DNS:localhost,IP:127.0.0.1,IP:::1"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=allowed.test",
             "-addext", "subjectAltName=" + san],
            check=True, capture_output=True, timeout=60,
        )
        _certs["pair"] = (cert, key)
    return _certs["pair"]


# ---------------------------------------------------------------- processes


# Looked up once here: the child between fork and exec must not import or dlopen anything.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGKILL it if the test process dies (e.g. killed by CTest's
    timeout), so no process outlives the test run even when cleanups cannot run."""
    _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class Proc:
    """A child process whose stdout/stderr lines are collected by threads."""

    def __init__(self, tc, name, cmd, env=None, stdout_lines=True):
        self.tc, self.name, self.cmd = tc, name, cmd
        self.lines_out, self.lines_err = [], []
        self.cond = threading.Condition()
        self.errfile = open(os.path.join(tc.tmp, name + ".stderr"), "w")
        self.p = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(env), cwd=tc.tmp, preexec_fn=_die_with_parent,
        )
        self.threads = [
            threading.Thread(target=self._pump, args=(self.p.stdout, self.lines_out, None),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.p.stderr, self.lines_err, self.errfile),
                             daemon=True),
        ]
        for t in self.threads:
            t.start()
        tc.addCleanup(self._cleanup)

    def _pump(self, f, into, copy):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if copy:
                copy.write(line + "\n")
                copy.flush()
            with self.cond:
                into.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, regex, stream="err", timeout=WAIT, start=0):
        """Waits for a line matching regex (from index start); returns the match or None."""
        rx = re.compile(regex)
        lines = self.lines_err if stream == "err" else self.lines_out
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not any(
                        t.is_alive() for t in self.threads)):
                    return None
                self.cond.wait(min(left, 0.2))

    @property
    def stderr(self):
        with self.cond:
            return "\n".join(self.lines_err)

    def running(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=WAIT):
        """Signals the process, waits, kills it on timeout. Returns the exit code (negative:
        killed by that signal; None if it had to be killed after the timeout)."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                self._join()
                return None
        self._join()
        return self.p.returncode

    def _join(self):
        for t in self.threads:
            t.join(5)
        for f in (self.p.stdout, self.p.stderr):
            if not any(t.is_alive() for t in self.threads):
                f.close()
        if not self.errfile.closed:
            self.errfile.close()

    def _cleanup(self):
        if self.p.poll() is None:
            self.stop(signal.SIGTERM if self.name.startswith("awf-proxy") else signal.SIGKILL, 10)
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        self._join()


SANITIZER = re.compile(r"ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error: ")


class Proxy(Proc):
    """awf-proxy on an ephemeral loopback port, its access logs in the test's directory.

    logs: formats to write, each to its own file: "firewall_detailed" -> access.log,
    "squid" -> squid.log, "audit_jsonl" -> audit.jsonl. hosts: {name: address} written to a hosts
    file given with --hosts-file (default: allowed.test and other.test at 127.0.0.1). dns: DNS
    servers (default a closed loopback port, so no lookup ever leaves the machine).
    """

    LOG_FILES = {"firewall_detailed": "access.log", "squid": "squid.log",
                 "audit_jsonl": "audit.jsonl"}

    def __init__(self, tc, *args, logs=("firewall_detailed",), listen="127.0.0.1:0", hosts=None,
                 dns=None, ready=True, name="awf-proxy", wrap=()):
        """wrap: a command the proxy runs under (e.g. strace), its arguments first."""
        self.log_paths = {}
        tc.n_proxies = getattr(tc, "n_proxies", 0) + 1
        suffix = "" if tc.n_proxies == 1 else "-%d" % tc.n_proxies  # a second proxy in one test
        cmd = list(wrap) + [proxy_binary()]
        for addr in [listen] if isinstance(listen, str) else listen:
            cmd += ["--listen", addr]
        for fmt in logs:
            base, ext = os.path.splitext(self.LOG_FILES.get(fmt, fmt + ".log"))
            path = os.path.join(tc.tmp, base + suffix + ext)
            self.log_paths[fmt] = path
            cmd += ["--access-log", "%s:%s" % (fmt, path)]
        if hosts is None:
            hosts = {ALLOWED: "127.0.0.1", OTHER: "127.0.0.1"}
        self.hosts_file = os.path.join(tc.tmp, "hosts" + suffix)
        with open(self.hosts_file, "w") as f:
            for host, addr in hosts.items():
                f.write("%s %s\n" % (addr, host))
        cmd += ["--hosts-file", self.hosts_file]
        cmd += ["--dns-servers", dns or "127.0.0.1:%d" % closed_port()]
        cmd += [str(a) for a in args]
        super().__init__(tc, name + suffix, cmd)
        self.ports, self.addrs = [], []
        if ready:
            self.wait_ready()

    def wait_ready(self, count=1):
        deadline = time.monotonic() + WAIT
        rx = re.compile(STAMP + r"awf-proxy: listening on (\[[^\]]+\]|[^:]+):(\d+)$")
        while True:
            with self.cond:
                found = [rx.match(l) for l in self.lines_err]
            found = [m for m in found if m]
            if len(found) >= count:
                self.addrs = [(m.group(1).strip("[]"), int(m.group(2))) for m in found]
                self.ports = [p for _, p in self.addrs]
                return
            if not self.running() or time.monotonic() > deadline:
                rc = self.stop(timeout=5)
                raise AssertionError("awf-proxy did not become ready (exit %s): %s\n%s" % (
                    rc, " ".join(self.cmd), self.stderr))
            self.wait_line("listening on", timeout=0.2)

    @property
    def port(self):
        return self.ports[0]

    @property
    def url(self):
        host, port = self.addrs[0]
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, port)

    def log_lines(self, fmt="firewall_detailed"):
        return file_lines(self.log_paths[fmt])

    def wait_log(self, count, fmt="firewall_detailed", timeout=WAIT):
        """Waits until the log has at least count lines. Returns all lines."""
        return wait_file_lines(self.log_paths[fmt], count, timeout)

    def entries(self, count, fmt="firewall_detailed"):
        """Waits for count lines, checks each against its format and returns them parsed."""
        lines = self.wait_log(count, fmt)
        self.tc.assertEqual(len(lines), count, "%s log lines, expected %d:\n%s" % (
            fmt, count, "\n".join(lines)))
        return [PARSERS[fmt](self.tc, l) for l in lines]

    def sanitizer_report(self):
        m = SANITIZER.search(self.stderr)
        return self.stderr if m else None

    def _cleanup(self):
        super()._cleanup()
        report = self.sanitizer_report()
        if report:
            raise AssertionError("sanitizer report from awf-proxy:\n" + report)


class Upstream(Proc):
    """tests/tools/upstream.py: .http, .https, .echo ports on host."""

    def __init__(self, tc, tls=True, host="127.0.0.1"):
        cmd = [sys.executable, "-B", os.path.join(TOOLS_DIR, "upstream.py"), "--host", host]
        if tls:
            cert, key = certs()
            cmd += ["--cert", cert, "--key", key]
        super().__init__(tc, "upstream-%d" % id(self), cmd)
        self.host = host
        if not self.wait_line("^ready$", stream="out"):
            raise AssertionError("upstream did not start: " + self.stderr)
        self.ports = {}
        for line in self.lines_out:
            parts = line.split()
            if len(parts) == 3:
                self.ports[parts[0]] = int(parts[2])
        self.http = self.ports.get("http")
        self.https = self.ports.get("https")
        self.echo = self.ports.get("echo")


    def stats(self):
        """The upstream's connection counters once every accepted connection has either sent
        a byte or closed; "spoke" leaves out the /stats requests."""
        deadline = time.monotonic() + WAIT
        while True:
            with socket.create_connection((self.host, self.http), WAIT) as s:
                s.sendall(b"GET /stats HTTP/1.1\r\nHost: upstream\r\nConnection: close\r\n\r\n")
                doc = json.loads(Reader(s).response().body)
            if doc["pending"] == 0 or time.monotonic() > deadline:
                return doc
            time.sleep(0.05)


class Dnsmasq(Proc):
    """dnsmasq on a loopback UDP/TCP port answering records {name: ip or [ips]} (TTL ttl) and
    NXDOMAIN for nxdomain names; everything else is REFUSED (there are no upstream servers).
    .queries() reads its query log as [(type, name)]."""

    def __init__(self, tc, records=None, nxdomain=(), ttl=0):
        exe = need_tool("dnsmasq")
        self.logfile = os.path.join(tc.tmp, "dnsmasq.log")
        for attempt in range(5):
            self.port = free_port_pair()
            cmd = [exe, "--no-resolv", "--no-hosts", "--port=%d" % self.port,
                   "--listen-address=127.0.0.1", "--bind-interfaces", "--log-queries",
                   "--log-facility=" + self.logfile, "--keep-in-foreground", "--pid-file=",
                   "--user=" + _user(), "--cache-size=0"]
            if ttl:
                cmd.append("--local-ttl=%d" % ttl)
            for name, ips in (records or {}).items():
                for ip in [ips] if isinstance(ips, str) else ips:
                    cmd.append("--address=/%s/%s" % (name, ip))
            for name in nxdomain:
                cmd.append("--address=/%s/" % name)
            super().__init__(tc, "dnsmasq", cmd)
            if self._wait_answer():
                return
            self.stop()
        raise AssertionError("dnsmasq did not start: " + self.stderr)

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def _wait_answer(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and self.running():
            if dns_query("127.0.0.1", self.port, "probe.invalid") is not None:
                return True
            time.sleep(0.05)
        return False

    def queries(self):
        try:
            with open(self.logfile) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        return [(m.group(1), m.group(2)) for m in
                re.finditer(r"query\[(\w+)\] (\S+) from", text) if m.group(2) != "probe.invalid"]


def _user():
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def dns_query(host, port, name, qtype=1):
    """One UDP query; returns the RCODE or None on no answer."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    msg = struct.pack(">HHHHHH", 0x4157, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        try:
            s.sendto(msg, (host, port))
            data = s.recv(4096)
        except OSError:
            return None
    return data[3] & 15


class Nginx(Proc):
    """nginx (Debian's nginx-light) serving "h2ok" over TLS with HTTP/2 on a loopback port."""

    def __init__(self, tc):
        exe = need_tool("nginx")
        cert, key = certs()
        d = os.path.join(tc.tmp, "nginx")
        os.makedirs(d, exist_ok=True)
        for attempt in range(3):  # the port was free a moment ago; retry if someone took it
            self.port = free_port()
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(
                    "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                    "pid %(d)s/nginx.pid;\nerror_log %(d)s/error.log;\n"
                    "events { worker_connections 64; }\n"
                    "http {\n access_log off;\n client_body_temp_path %(d)s/body;\n"
                    " proxy_temp_path %(d)s/proxy;\n fastcgi_temp_path %(d)s/fcgi;\n"
                    " uwsgi_temp_path %(d)s/uwsgi;\n scgi_temp_path %(d)s/scgi;\n"
                    " server {\n  listen 127.0.0.1:%(port)d ssl http2;\n"
                    "  server_name allowed.test;\n"
                    "  ssl_certificate %(cert)s;\n  ssl_certificate_key %(key)s;\n"
                    "  location / { default_type text/plain; return 200 \"h2ok\\n\"; }\n"
                    " }\n}\n" % {"d": d, "port": self.port, "cert": cert, "key": key})
            super().__init__(tc, "nginx", [exe, "-p", d, "-c", conf])
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline and self.running():
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise AssertionError("nginx did not start: " + self.stderr)


# ---------------------------------------------------------------- clients


class ThreadServer:
    """A loopback TCP server in threads, for scripted upstreams a test writes in a few lines:
    each accepted connection runs self.serve(conn, conn_no) (conn_no from 1) in its own thread
    and is closed after it. Stopped by the test's cleanup."""

    def __init__(self, tc):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        tc.addCleanup(self.close)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.sock.close()
        for c in list(self.conns):
            c.close()
        self.thread.join(5)

    def serve(self, c, conn_no):
        raise NotImplementedError

    def _accept(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            self.conns.append(c)
            threading.Thread(target=self._run, args=(c, n), daemon=True).start()

    def _run(self, c, conn_no):
        try:
            self.serve(c, conn_no)
        except OSError:
            pass
        finally:
            c.close()


class CurlResult:
    def __init__(self, rc, out, err, body, headers):
        self.rc, self.out, self.err, self.body, self.headers_text = rc, out, err, body, headers
        w = out.strip().split("\n")[-1].split(" ") if out.strip() else []
        self.code = int(w[0]) if w and w[0].isdigit() else 0
        self.connect_code = int(w[1]) if len(w) > 1 and w[1].isdigit() else 0
        self.num_connects = int(w[2]) if len(w) > 2 and w[2].isdigit() else -1
        self.http_version = w[3] if len(w) > 3 else ""

    def header(self, name):
        """The last value of a response header (the proxy's own answer for CONNECT errors)."""
        val = None
        for line in self.headers_text.split("\n"):
            k, sep, v = line.partition(":")
            if sep and k.strip().lower() == name.lower():
                val = v.strip()
        return val

    def __repr__(self):
        return "curl rc=%d code=%d connect=%d err=%r" % (self.rc, self.code, self.connect_code,
                                                          self.err)


def file_lines(path):
    """The non-empty lines of a text file, none if it does not exist (yet)."""
    data = _read(path, b"").decode("utf-8", "replace")
    return [l for l in data.split("\n") if l]


def wait_file_lines(path, count, timeout=WAIT):
    """Waits until the file has at least count lines (a log writer thread writes them when a
    transaction ends). Returns all lines."""
    deadline = time.monotonic() + timeout
    while True:
        lines = file_lines(path)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def fifo_lines(fd, count, timeout=WAIT):
    """Reads a non-blocking FIFO reader until count whole lines came or timeout passed. Returns
    the lines read."""
    data, deadline = b"", time.monotonic() + timeout
    while data.count(b"\n") < count and time.monotonic() < deadline:
        select.select([fd], [], [], 0.2)
        try:
            data += os.read(fd, 1 << 16)
        except BlockingIOError:
            pass
    return data.decode().splitlines()


def _read(path, default):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return default


WRITE_OUT = "%{http_code} %{http_connect} %{num_connects} %{http_version}\\n"


def curl(tc, url, *args, proxy=None, timeout=60, env=None):
    """Runs real curl once for one URL. proxy: a Proxy (explicit proxy, -x) or None; env: extra
    environment (e.g. HTTPS_PROXY)."""
    exe = need_tool("curl")
    n = len(tc.curl_runs) if hasattr(tc, "curl_runs") else 0
    body = os.path.join(tc.tmp, "curl-body-%d" % n)
    hdrs = os.path.join(tc.tmp, "curl-headers-%d" % n)
    cmd = [exe, "-sS", "-o", body, "-D", hdrs, "-w", WRITE_OUT, "--max-time", str(timeout)]
    if proxy is not None:
        cmd += ["-x", proxy.url if isinstance(proxy, Proxy) else proxy]
    cmd += [str(a) for a in args] + [url]
    p = subprocess.run(cmd, capture_output=True, env=clean_env(env), timeout=timeout + 30)
    tc.curl_runs = getattr(tc, "curl_runs", []) + [cmd]
    data, headers = _read(body, b""), _read(hdrs, b"").decode("latin-1")
    return CurlResult(p.returncode, p.stdout.decode(errors="replace"),
                      p.stderr.decode(errors="replace"), data, headers)


def curl_multi(tc, urls, *args, proxy=None, timeout=60):
    """One curl for several URLs (keep-alive reuse). Returns [(code, num_connects, body)]."""
    exe = need_tool("curl")
    cmd = [exe, "-sS", "--max-time", str(timeout)]
    if proxy is not None:
        cmd += ["-x", proxy.url]
    cmd += [str(a) for a in args]
    bodies = []
    for i, u in enumerate(urls):
        path = os.path.join(tc.tmp, "multi-%d" % i)
        bodies.append(path)
        cmd += ["-o", path, "-w", "%{http_code} %{num_connects}\\n", u]
    p = subprocess.run(cmd, capture_output=True, env=clean_env(), timeout=timeout + 30)
    out = []
    lines = p.stdout.decode().strip().split("\n")
    for i, path in enumerate(bodies):
        code, nc = (lines[i].split() + ["0", "-1"])[:2] if i < len(lines) else ("0", "-1")
        out.append((int(code), int(nc), _read(path, b"")))
    return p.returncode, out, p.stderr.decode(errors="replace")


def connect(proxy, timeout=WAIT):
    host, port = proxy.addrs[0]
    s = socket.create_connection((host, port), timeout)
    s.settimeout(timeout)
    return s


def recv_all(s):
    """Reads until EOF (or the socket's timeout, which raises)."""
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out
        out += d


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason = version, status, reason
        self.headers, self.body = headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class Reader:
    """Reads HTTP/1.x responses from a socket, one at a time (pipelining keeps its order)."""

    def __init__(self, sock):
        self.s, self.buf = sock, b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            return False
        self.buf += d
        return True

    def _until(self, sep):
        while sep not in self.buf:
            if not self._fill():
                return None
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise AssertionError("connection closed inside a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_only=False, interim=False):
        """The next response (1xx skipped unless interim). None at EOF before any byte."""
        while True:
            head = self._until(b"\r\n\r\n")
            if head is None:
                if self.buf:
                    raise AssertionError("partial response head: %r" % self.buf)
                return None
            lines = head[:-4].decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status_s, _, reason = rest.partition(" ")
            status = int(status_s)
            headers = []
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers.append((k, v.strip()))
            r = Response(version, status, reason, headers, b"")
            if 100 <= status < 200 and status != 101 and not interim:
                continue
            break
        if head_only or status in (204, 304) or 100 <= status < 200:
            return r
        te = r.header("transfer-encoding")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self._until(b"\r\n") not in (b"\r\n", None):
                        pass
                    break
                body += self._exact(size)
                self._exact(2)
            r.body = body
        elif r.header("content-length") is not None:
            r.body = self._exact(int(r.header("content-length")))
        else:
            while self._fill():
                pass
            r.body, self.buf = self.buf, b""
        return r


def raw_request(proxy, data, timeout=WAIT):
    """Sends raw bytes on a new connection and reads one response (None if closed before)."""
    s = connect(proxy, timeout)
    try:
        s.sendall(data)
        try:
            return Reader(s).response()
        except ConnectionResetError:
            return None
    finally:
        s.close()


def TlsClient(sock, server_hostname, **kw):  # noqa: N802  (reads like the class it makes)
    """awf_tls.TlsClient trusting the test certificate unless told otherwise."""
    kw.setdefault("cafile", certs()[0])
    return awf_tls.TlsClient(sock, server_hostname, **kw)


def tunnel(proxy, hostport, ua=None):
    """A raw socket with an established CONNECT tunnel to hostport (asserts the 200)."""
    s = connect(proxy)
    hdr = b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (hostport.encode(), hostport.encode())
    if ua:
        hdr += b"User-Agent: %s\r\n" % ua.encode()
    s.sendall(hdr + b"\r\n")
    rd = Reader(s)
    r = rd.response(head_only=True)
    if r.status != 200 or rd.buf:
        s.close()
        raise AssertionError("CONNECT %s: %r %r" % (hostport, r, rd.buf))
    return s


# ---------------------------------------------------------------- the base test case


class TestCase(unittest.TestCase):
    """setUp gives self.tmp; helpers start things that stop on cleanup."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="awf-it-")
        if not os.environ.get("AWF_KEEP_TMP"):
            self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        return path

    def proxy(self, *args, **kw):
        return Proxy(self, *args, **kw)

    def upstream(self, **kw):
        return Upstream(self, **kw)

    def dnsmasq(self, **kw):
        return Dnsmasq(self, **kw)

    def curl(self, url, *args, **kw):
        return curl(self, url, *args, **kw)

    def cli(self, *args, input=None, timeout=30):
        """Runs awf-proxy with args to completion; returns CompletedProcess with text output."""
        p = subprocess.run([proxy_binary()] + [str(a) for a in args], capture_output=True,
                           input=input, env=clean_env(), cwd=self.tmp, timeout=timeout)
        p.stdout = p.stdout.decode("utf-8", "replace")
        p.stderr = p.stderr.decode("utf-8", "replace")
        self.assertNotRegex(p.stderr, SANITIZER, "sanitizer report")
        return p

    def assertDenied(self, res, proxy_res=True):
        """A curl result is the proxy's 403 with the Squid error header."""
        code = res.connect_code or res.code
        self.assertEqual(code, 403, repr(res))
        self.assertEqual(res.header("X-Squid-Error"), "ERR_ACCESS_DENIED 0", res.headers_text)


# The YAML policy layout (version 1, policy/settings.c): top-level "allow" and "block" lists.
# Kept in one place: tests compute line numbers from it.
def policy_yaml(allow=(), block=(), extra=""):
    """A version-1 YAML policy. Entries are written one per line as YAML double-quoted scalars
    (JSON strings), so any character can be put in one. Returns (text, {entry: (line, col)}) with
    the 1-based position of each entry's opening quote."""
    lines = ["version: 1"]
    where = {}
    for key, entries in (("allow", allow), ("block", block)):
        if not entries:
            continue
        lines.append("%s:" % key)
        for e in entries:
            lines.append("  - " + json.dumps(e))
            where[e] = (len(lines), 5)
    text = "\n".join(lines) + "\n" + extra
    return text, where


def allow_loopback_args(*domains, ports=(), opaque=()):
    """Policy flags for tests talking to the loopback upstream: the names allowed, the upstream's
    ports added, loopback allowed past the private-address check; tunnels to the opaque ports
    may carry bytes that are not TLS or HTTP (an echo server's)."""
    args = ["--allow-domains", ",".join(domains or (ALLOWED,)), "--allow-ranges", "127.0.0.0/8"]
    if ports:
        args += ["--allow-ports", ",".join(str(p) for p in ports)]
    if opaque:
        args += ["--set", "tunnels.opaque_ports=" + ",".join(str(p) for p in opaque)]
    return args


"""Running a container's entrypoint without a container engine.

A container is, for an entrypoint, a root shell in its own mount, network and PID namespaces, with
some host directories bind-mounted at fixed paths and an environment. ns_command() builds exactly
that with unshare(1): private mounts (nothing done inside is seen by the host), a network
namespace with only loopback, the entrypoint as PID 1 (so the proxy it execs is PID 1 and gets
SIGTERM as under Docker). unshare runs with --kill-child, so killing it (what every cleanup does)
kills the whole namespace. Only loopback addresses and addresses inside the namespace are used.
"""

import os
import shlex
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import awf  # noqa: E402

PROXY_ENTRYPOINT = os.path.join(awf.SOURCE_DIR, "containers", "proxy", "entrypoint.sh")
INIT_ENTRYPOINT = os.path.join(awf.SOURCE_DIR, "containers", "agent-init", "entrypoint.sh")


def need_root():
    """Skips (fails under CI=true) unless root with unshare and setpriv."""
    if os.geteuid() != 0:
        msg = "needs root (namespaces, bind mounts, setpriv)"
        if awf.CI:
            raise AssertionError(msg + " (CI=true)")
        raise unittest.SkipTest(msg)
    for tool in ("unshare", "setpriv", "nsenter", "mount", "ip"):
        awf.need_tool(tool)


def _mount_lines(mounts):
    """Shell lines bind-mounting each {target: source} inside the private mount namespace.

    A source given as (path, "ro") is mounted read-only; a source may be a file. When a target
    does not exist on this
    machine (no squid package here), its parent is covered by an overlay whose upper layer is in
    the test's directory, so the directory can be made without touching the host."""
    lines = []
    for n, (target, source) in enumerate(sorted(mounts.items())):
        ro = False
        if isinstance(source, tuple):
            source, ro = source[0], source[1] == "ro"
        t, s = shlex.quote(target), shlex.quote(source)
        parent = shlex.quote(os.path.dirname(target))
        up = shlex.quote(os.path.join(os.path.dirname(source), ".ovl-%d" % n))
        make = "touch" if os.path.isfile(source) else "mkdir"
        lines.append(
            "if [ ! -e %(t)s ]; then mkdir -p %(up)s/u %(up)s/w && mount -t overlay overlay "
            "-o lowerdir=%(p)s,upperdir=%(up)s/u,workdir=%(up)s/w %(p)s && %(make)s %(t)s; fi"
            % {"t": t, "p": parent, "up": up, "make": make})
        lines.append("mount --bind %s %s" % (s, t))
        if ro:
            lines.append("mount -o remount,bind,ro %s" % t)
    return lines


def ns_command(argv, mounts=None, ipv6=True, drop_caps=(), setup=()):
    """The command line running argv as PID 1 of fresh mount+net+PID namespaces.

    mounts: {path inside: host dir or (host dir, "ro")}; ipv6=False switches IPv6 off in the
    namespace (as a container without IPv6); drop_caps: capability names taken from the
    entrypoint's bounding set (e.g. "chown": a container without CAP_CHOWN); setup: more shell
    lines run first (e.g. making an eth0)."""
    lines = ["set -e", "ip link set lo up"]
    if not ipv6:
        lines.append("echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6")
        lines.append("echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
    lines += _mount_lines(mounts or {})
    lines += list(setup)
    prefix = ""
    if drop_caps:
        caps = ",".join("-" + c for c in drop_caps)
        prefix = "setpriv --bounding-set=%s --inh-caps=%s -- " % (caps, caps)
    lines.append("exec %s%s" % (prefix, " ".join(shlex.quote(a) for a in argv)))
    return ["unshare", "--mount", "--propagation", "private", "--net", "--pid", "--fork",
            "--kill-child", "--mount-proc", "sh", "-c", "\n".join(lines)]


def ns_pid1(proc, timeout=awf.WAIT):
    """The host PID of the namespace's PID 1 (the child unshare forked), or None."""
    deadline = time.monotonic() + timeout
    pid = proc.p.pid
    while time.monotonic() < deadline and proc.running():
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except FileNotFoundError:
            return None
        time.sleep(0.02)
    return None


def in_ns(pid, argv, timeout=awf.WAIT):
    """Runs argv in the network namespace of pid (like `docker exec` of a healthcheck)."""
    return subprocess.run(["nsenter", "--target", str(pid), "--net", "--"] + list(argv),
                          capture_output=True, text=True, timeout=timeout)


def status_field(pid, name):
    """A field of /proc/PID/status ("Uid" -> "13\t13\t13\t13"), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == name:
                    return v.strip()
    except FileNotFoundError:
        return None
    return None


def make_tree(tc, *names):
    """Directories under the test's tmp, world-traversable (uid 13 reaches the binary and the
    stub through them)."""
    os.chmod(tc.tmp, 0o755)
    out = []
    for n in names:
        p = os.path.join(tc.tmp, n)
        os.makedirs(p, exist_ok=True)
        out.append(p)
    return out


"""Running a container's entrypoint without a container engine.

A container is, for an entrypoint, a root shell in its own mount, network and PID namespaces, with
some host directories bind-mounted at fixed paths and an environment. ns_command() builds exactly
that with unshare(1): private mounts (nothing done inside is seen by the host), a network
namespace with only loopback, the entrypoint as PID 1 (so the proxy it execs is PID 1 and gets
SIGTERM as under Docker). unshare runs with --kill-child, so killing it (what every cleanup does)
kills the whole namespace. Only loopback addresses and addresses inside the namespace are used.

With root=DIR (a built image's root, images.container_root()), the command runs chrooted there
instead, with /proc of its own and the host's /dev: the image's entrypoint, binaries and tools,
the mounts made at their paths inside the root.
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


def _mount_lines(mounts, root=None):
    """Shell lines bind-mounting each {target: source} inside the private mount namespace.

    A source given as (path, "ro") is mounted read-only; a source may be a file. When a target
    does not exist on this
    machine (no squid package here), its parent is covered by an overlay whose upper layer is in
    the test's directory, so the directory can be made without touching the host. Under an
    image's root (root=DIR) targets are inside it, and made there: that root is the test's own
    container."""
    lines = []
    for n, (target, source) in enumerate(sorted(mounts.items())):
        ro = False
        if isinstance(source, tuple):
            source, ro = source[0], source[1] == "ro"
        if root:
            t, s = shlex.quote(os.path.join(root, target.lstrip("/"))), shlex.quote(source)
            make = "touch" if os.path.isfile(source) else "mkdir -p"
            lines.append("[ -e %(t)s ] || { mkdir -p \"$(dirname %(t)s)\" && %(make)s %(t)s; }"
                         % {"t": t, "make": make})
            lines.append("mount --bind %s %s" % (s, t))
            if ro:
                lines.append("mount -o remount,bind,ro %s" % t)
            continue
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


def ns_command(argv, mounts=None, ipv6=True, drop_caps=(), setup=(), root=None, netns=None):
    """The command line running argv as PID 1 of fresh mount+net+PID namespaces.

    mounts: {path inside: host dir or (host dir, "ro")}; ipv6=False switches IPv6 off in the
    namespace (as a container without IPv6); drop_caps: capability names taken from the
    entrypoint's bounding set (e.g. "chown": a container without CAP_CHOWN); setup: more shell
    lines run first (e.g. making an eth0), with the host's tools; root: an image's root to chroot
    into (argv and the mount targets are paths inside it); netns: the name of a network
    namespace the test made (`ip netns add`) to run in instead of a new one."""
    lines = ["set -e", "ip link set lo up"]
    if not ipv6:
        lines.append("echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6")
        lines.append("echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
    if root:
        # What a container runtime gives every container: /dev, and an /etc/hosts naming
        # localhost (Docker writes one; the image's own is empty). A test's mount may replace it.
        lines.append("mount --rbind /dev %s" % shlex.quote(os.path.join(root, "dev")))
        lines.append("printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost "
                     "ip6-loopback\\n' > %s" % shlex.quote(os.path.join(root, "etc", "hosts")))
    lines += _mount_lines(mounts or {}, root)
    lines += list(setup)
    prefix = ""
    if drop_caps:
        caps = ",".join("-" + c for c in drop_caps)
        prefix = "setpriv --bounding-set=%s --inh-caps=%s -- " % (caps, caps)
    if root:
        prefix += "chroot %s " % shlex.quote(root)
    lines.append("exec %s%s" % (prefix, " ".join(shlex.quote(a) for a in argv)))
    proc = "--mount-proc" + ("=" + os.path.join(root, "proc") if root else "")
    cmd = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
           proc, "sh", "-c", "\n".join(lines)]
    if netns:
        return ["ip", "netns", "exec", netns] + cmd
    return cmd[:1] + ["--net"] + cmd[1:]


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


def in_ns(pid, argv, timeout=awf.WAIT, inside=False):
    """Runs argv in the network namespace of pid; inside=True: also in its mount namespace and
    root, with the container's own tools (`docker exec`, as the image's healthcheck runs)."""
    enter = ["--mount", "--root", "--wd"] if inside else []
    return subprocess.run(["nsenter", "--target", str(pid), "--net"] + enter + ["--"] +
                          list(argv), capture_output=True, text=True, timeout=timeout)


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


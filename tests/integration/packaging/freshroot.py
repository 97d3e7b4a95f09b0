"""A fresh Debian 12 root for a test: the bookworm minbase tarball of tests/tools/base-root.sh
extracted into a directory of the build tree, entered with tests/tools/in-root.sh (chroot in
new PID and mount namespaces, /proc and /dev mounted, resolv.conf copied, the machine's apt
archive cache under /var/cache/apt/archives so each .deb is downloaded once per machine).
Removed when the test ends; every process started in it is in one process group that the
cleanup kills."""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import awf

TOOLS = os.path.join(awf.SOURCE_DIR, "tests", "tools")
BUILD = os.environ.get("AWF_BUILD_DIR", os.path.join(awf.SOURCE_DIR, "build"))
# What a login shell of root would have; nothing of the test's environment leaks in.
ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME=/root", "LANG=C.UTF-8"]


def need_root():
    if os.geteuid() != 0:
        if awf.CI:
            raise AssertionError("fresh-root tests need root (CI=true)")
        raise unittest.SkipTest("fresh-root tests need root")


def base_tarball():
    """The cached minbase tarball (made by the base_root fixture; instant when cached)."""
    p = subprocess.run([os.path.join(TOOLS, "base-root.sh")], capture_output=True, text=True,
                       timeout=900)
    if p.returncode == 77:
        raise unittest.SkipTest(p.stderr.strip())
    if p.returncode != 0:
        raise AssertionError("base-root.sh failed: " + p.stderr)
    return p.stdout.strip()


class Root:
    def __init__(self, tc):
        need_root()
        awf.need_tool("unshare")
        tar = base_tarball()
        parent = os.path.join(BUILD, "fresh-roots")
        os.makedirs(parent, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="root-", dir=parent)
        tc.addCleanup(self.remove)
        subprocess.run(["tar", "-C", self.dir, "--numeric-owner", "-xf", tar], check=True,
                       timeout=300)

    def path(self, p):
        return os.path.join(self.dir, p.lstrip("/"))

    def argv(self, cmd, apt=True):
        return ([os.path.join(TOOLS, "in-root.sh")] + (["--apt-cache"] if apt else []) +
                [self.dir] + ENV + list(cmd))

    def run(self, cmd, timeout=900, apt=True):
        """Runs cmd (a list) in the root to completion: CompletedProcess with text output."""
        return subprocess.run(self.argv(cmd, apt), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def sh(self, script, timeout=900, apt=True):
        """Runs a shell script in the root, apt without questions."""
        return self.run(["sh", "-ec", "export DEBIAN_FRONTEND=noninteractive; " + script],
                        timeout=timeout, apt=apt)

    def remove(self):
        # in-root.sh's mounts live in namespaces that died with it; never delete through one.
        with open("/proc/self/mountinfo") as f:
            mounted = [l.split()[4] for l in f if l.split()[4].startswith(self.dir + "/")]
        if mounted:
            raise AssertionError("still mounted in %s, not removed: %s" % (self.dir, mounted))
        shutil.rmtree(self.dir, ignore_errors=True)


class Job:
    """A long command in a root: its own process group (killed at cleanup), stdout and stderr
    collected line by line and copied to files in the test's directory."""

    def __init__(self, tc, root, cmd, name):
        self.lines = {"out": [], "err": []}
        self.cond = threading.Condition()
        self.p = subprocess.Popen(root.argv(cmd), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        tc.addCleanup(self.kill)
        self.threads = []
        for key, f in (("out", self.p.stdout), ("err", self.p.stderr)):
            t = threading.Thread(target=self._pump,
                                 args=(f, key, os.path.join(tc.tmp, "%s.%s" % (name, key))),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, f, key, copy):
        with open(copy, "w") as out:
            for raw in iter(f.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                out.write(line + "\n")
                out.flush()
                with self.cond:
                    self.lines[key].append(line)
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pred, key="err", timeout=awf.WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[key]:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or not any(t.is_alive() for t in self.threads):
                    return None
                self.cond.wait(min(left, 1.0))

    def text(self, key):
        with self.cond:
            return "\n".join(self.lines[key])

    def pids(self, comm):
        """Host pids of this job's processes named comm."""
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.getpgid(int(d)) != self.p.pid:
                    continue
                with open("/proc/%s/comm" % d) as f:
                    if f.read().strip() == comm:
                        found.append(int(d))
            except (OSError, ProcessLookupError):
                continue
        return found

    def wait(self, timeout):
        rc = self.p.wait(timeout)
        for t in self.threads:
            t.join(10)
        return rc

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait()
        for t in self.threads:
            t.join(10)

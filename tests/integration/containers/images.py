"""The container images, really built: Debian's podman builds containers/*/Dockerfile and the
tests enter the built image's root (issue 11).

No registry and no OCI runtime are reachable on these machines, so:
- the base is made locally: tests/tools/base-root.sh's bookworm minbase tarball, `podman import`ed
  as debian:bookworm and debian:bookworm-slim (skipped when the images there carry the same
  tarball's sha256 in a label, so podman's layer cache stays valid from run to run);
- `podman build --isolation chroot --pull=never` runs the Dockerfiles' RUN steps without a
  runtime, with the machine's apt archive cache bound at /var/cache/apt/archives
  (tests/tools/with-apt-cache.sh), so each .deb is downloaded once per machine;
- a test gets a writable root of the built image with `podman create` + `podman mount` (a
  container of its own, removed in the cleanup) and enters it with ns.ns_command(root=...):
  unshare + chroot, as a container runtime would.

Everything lives in a podman store of its own under /var/lib/containers (STORE): a kept machine
keeps the base and the layer cache (the apt steps) between CI runs, and a developer's own
debian:bookworm is never touched. Run as a script, it builds both images:

    python3 tests/integration/containers/images.py build      # prints the image names
"""

import hashlib
import os
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import awf  # noqa: E402

STORE = ["--root", "/var/lib/containers/awf-proxy-ci/storage",
         "--runroot", "/run/awf-proxy-ci", "--storage-driver", "overlay"]
BASE_TAGS = ("localhost/debian:bookworm", "localhost/debian:bookworm-slim")
BASE_LABEL = "org.awf-proxy.base-sha256"
KINDS = ("proxy", "agent-init")
# The image a test enters: set by CTest for the image variant of a test file (images built by the
# `image_build` fixture); unset, the tests run the entrypoints from the source tree instead.
ENV_IMAGE = {"proxy": "AWF_IMAGE_PROXY", "agent-init": "AWF_IMAGE_AGENT_INIT"}


def image_under_test(kind):
    """The image name a test file runs against, or None (the source tree's entrypoints)."""
    return os.environ.get(ENV_IMAGE[kind]) or None


def need_tools():
    """Root, podman, unshare, chroot: skips without them, fails under CI=true."""
    if os.geteuid() != 0:
        msg = "needs root (podman's store, namespaces, chroot)"
        if awf.CI:
            raise AssertionError(msg + " (CI=true)")
        raise unittest.SkipTest(msg)
    for tool in ("podman", "unshare", "chroot", "nsenter"):
        awf.need_tool(tool)


def podman(*args, timeout=120, check=True):
    """Runs podman on the CI store; returns the CompletedProcess (text)."""
    p = subprocess.run(["podman"] + STORE + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, env=awf.clean_env())
    if check and p.returncode != 0:
        raise AssertionError("podman %s: exit %d\n%s" % (" ".join(args), p.returncode,
                                                          p.stderr[-4000:]))
    return p


def image_name(kind):
    """One tag per build directory (CTest sets AWF_IMAGE_TAG from its hash): concurrent
    checkouts on one machine never test each other's image, and a rebuild in the same checkout
    replaces its tag."""
    return "localhost/awf-proxy-ci/%s:%s" % (kind, os.environ.get("AWF_IMAGE_TAG", "dev"))


def base_tarball():
    p = subprocess.run([os.path.join(awf.TOOLS_DIR, "base-root.sh")], capture_output=True,
                       text=True, timeout=1200)
    if p.returncode != 0:
        raise AssertionError("base-root.sh: exit %d\n%s" % (p.returncode, p.stderr))
    return p.stdout.strip()


def import_base(tar):
    """debian:bookworm and -slim from the tarball, unless they are from it already."""
    h = hashlib.sha256()
    with open(tar, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    sha = h.hexdigest()
    fmt = "{{index .Labels \"%s\"}}" % BASE_LABEL
    current = [podman("image", "inspect", "--format", fmt, t, check=False).stdout.strip()
               for t in BASE_TAGS]
    if current == [sha] * len(BASE_TAGS):
        return False
    podman("import", "--change", "LABEL %s=%s" % (BASE_LABEL, sha), tar, BASE_TAGS[0],
           timeout=600)
    podman("tag", BASE_TAGS[0], *BASE_TAGS[1:])
    return True


def build(kind, name):
    """podman build of containers/KIND/Dockerfile from the source tree, tagged name."""
    dockerfile = os.path.join(awf.SOURCE_DIR, "containers", kind, "Dockerfile")
    argv = ["podman"] + STORE + [
        "build", "--isolation", "chroot", "--pull=never", "--layers", "--force-rm",
        "--ignorefile", dockerfile + ".dockerignore", "-f", dockerfile, "-t", name,
        "-v", "$AWF_APT_ARCHIVES:/var/cache/apt/archives", awf.SOURCE_DIR]
    # $AWF_APT_ARCHIVES is with-apt-cache.sh's overlay, known only inside it.
    script = " ".join('"$AWF_APT_ARCHIVES:/var/cache/apt/archives"' if a.startswith("$AWF")
                      else "'%s'" % a.replace("'", "'\\''") for a in argv)
    p = subprocess.run([os.path.join(awf.TOOLS_DIR, "with-apt-cache.sh"), "sh", "-c", script],
                       capture_output=True, text=True, timeout=1800, env=awf.clean_env())
    if p.returncode != 0:
        raise AssertionError("podman build of %s: exit %d\n%s\n%s" % (
            kind, p.returncode, p.stdout[-6000:], p.stderr[-4000:]))


def container_root(tc, image):
    """A writable root of image for this test: a podman container (never run) whose file
    system is mounted; unmounted and removed in the test's cleanup. Returns the path."""
    name = "awf-ci-%s" % uuid.uuid4().hex[:12]
    podman("create", "--name", name, "--network", "none", image)
    tc.addCleanup(podman, "rm", "--force", name, check=False)
    root = podman("mount", name).stdout.strip()
    tc.addCleanup(podman, "umount", name, check=False)
    if not os.path.isdir(os.path.join(root, "proc")):
        raise AssertionError("podman mount of %s gave %r, no root file system" % (image, root))
    return root


def main(argv):
    if argv[1:] != ["build"]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        need_tools()
    except unittest.SkipTest as e:
        print("images.py: skipped: %s" % e, file=sys.stderr)
        return 77
    t0 = time.monotonic()
    imported = import_base(base_tarball())
    print("images.py: base %s in %.1f s" % ("imported" if imported else "unchanged",
                                           time.monotonic() - t0), file=sys.stderr)
    for kind in KINDS:
        t = time.monotonic()
        build(kind, image_name(kind))
        print("images.py: built %s in %.1f s" % (image_name(kind), time.monotonic() - t),
              file=sys.stderr)
    # Untagged images left by earlier builds (a checkout's previous compile steps), once they
    # are a few days old: the layer cache of the apt steps is kept, the store does not grow.
    podman("image", "prune", "--force", "--filter", "until=72h", check=False)
    for kind in KINDS:
        print(image_name(kind))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

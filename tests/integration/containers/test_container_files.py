"""Static checks of containers/: the Dockerfiles (no Docker engine runs here, and hadolint is not
packaged by Debian), the entrypoints (dash syntax, shellcheck) and compose.example.yml (AWF's
service contract, SPEC §9). The image build itself belongs to a CI that has a container engine.

The Dockerfile rules: multi-stage; the final stage on Debian slim without build tools or -dev
packages; the runtime libraries it installs cover every library the awf-proxy binary links
(checked with readelf and dpkg against the binary under test); the build stage installs the
packages that provide what CMakeLists.txt asks pkg-config for; EXPOSE 3128; HEALTHCHECK
`nc -z localhost 3128` with nc installed; STOPSIGNAL SIGTERM; no USER but root, with the
entrypoint dropping to uid/gid 13.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ns  # noqa: E402

awf = ns.awf
ROOT = awf.SOURCE_DIR
CONTAINERS = os.path.join(ROOT, "containers")

BUILD_TOOLS = {"build-essential", "gcc", "g++", "cc", "clang", "make", "cmake", "ninja-build",
               "pkg-config", "autoconf", "automake", "libtool", "git", "node-llhttp"}
# Libraries every Debian image has (libc6, libgcc-s1) and the sanitizer runtimes of a test build.
BASE_LIBS = re.compile(r"^(libc|libm|libdl|libpthread|librt|libgcc_s|ld-linux.*|libasan|"
                       r"libubsan|liblsan|libtsan|libstdc\+\+)\.so")


# ---------------------------------------------------------------- Dockerfile


class Dockerfile:
    """Instructions per stage: self.stages = [{"from": image, "name": n, "ins": [(op, arg)]}]."""

    def __init__(self, path):
        with open(path) as f:
            text = f.read()
        logical, cur = [], ""
        for line in text.splitlines():
            s = line.strip()
            if not cur and (not s or s.startswith("#")):
                continue
            if cur and s.startswith("#"):
                continue  # a comment inside a continued instruction
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            logical.append(cur + s)
            cur = ""
        self.args, self.stages = {}, []
        for line in logical:
            op, _, arg = line.partition(" ")
            op, arg = op.upper(), arg.strip()
            if op == "ARG" and not self.stages:
                k, _, v = arg.partition("=")
                self.args[k] = v
            elif op == "FROM":
                words = arg.split()
                image = re.sub(r"\$\{(\w+)\}", lambda m: self.args.get(m.group(1), ""), words[0])
                name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
                self.stages.append({"from": image, "name": name, "ins": []})
            else:
                self.stages[-1]["ins"].append((op, arg))

    @property
    def final(self):
        return self.stages[-1]

    def ops(self, stage, op):
        return [a for o, a in stage["ins"] if o == op]

    def apt_packages(self, stage):
        """Packages named by `apt-get install` in a stage's RUN lines."""
        pkgs = []
        for run in self.ops(stage, "RUN"):
            for cmd in re.split(r"&&|;|\|\|", run):
                words = shlex.split(cmd)
                while words and "=" in words[0]:
                    words = words[1:]  # VAR=value prefixes
                if words[:2] == ["apt-get", "install"]:
                    pkgs += [w for w in words[2:] if not w.startswith("-")]
        return pkgs


def exec_form(arg):
    """A JSON exec-form argument (["a", "b"]), or the shell form split."""
    try:
        v = json.loads(arg)
        return v if isinstance(v, list) else None
    except ValueError:
        return shlex.split(arg)


def package_of(path):
    """The Debian package that owns a file (dpkg -S), without the architecture."""
    p = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
    if p.returncode != 0:
        p = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    return p.stdout.split(":")[0].strip()


def linked_libraries(binary):
    """{soname: resolved path} of the binary's NEEDED libraries, via ldd."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2)
    needed = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                            check=True).stdout
    names = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", needed)
    return {n: libs.get(n) for n in names}


class DockerfileRules:
    """Checks shared by both images; subclasses set PATH, ENTRYPOINT and RUNTIME_EXTRA."""

    PATH = None
    ENTRYPOINT_SCRIPT = None
    RUNTIME_EXTRA = ()

    def setUp(self):
        super().setUp()
        self.df = Dockerfile(os.path.join(CONTAINERS, self.PATH))

    def test_multi_stage_with_slim_final_stage(self):
        self.assertGreaterEqual(len(self.df.stages), 2)
        self.assertRegex(self.df.final["from"], r"^debian:[a-z]+-slim$")
        self.assertTrue(self.df.stages[0]["name"], "the build stage needs a name")
        build = self.df.stages[0]
        self.assertRegex(self.df.stages[0]["from"], r"^debian:[a-z]+$")
        self.assertEqual(self.df.final["from"], build["from"] + "-slim",
                         "build and final stage on different Debian releases")
        copies = self.df.ops(self.df.final, "COPY")
        self.assertTrue(any(c.startswith("--from=%s " % build["name"]) and "awf-proxy" in c
                            for c in copies), copies)
        runs = " ".join(self.df.ops(build, "RUN"))
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", runs)
        self.assertIn("-DAWF_TESTS=OFF", runs)

    def test_no_build_tools_in_final_stage(self):
        pkgs = self.df.apt_packages(self.df.final)
        bad = [p for p in pkgs if p in BUILD_TOOLS or p.endswith("-dev")]
        self.assertEqual(bad, [])
        for run in self.df.ops(self.df.final, "RUN"):
            if "apt-get install" in run:
                self.assertIn("--no-install-recommends", run)
                self.assertIn("rm -rf /var/lib/apt/lists/*", run)

    def test_build_stage_has_what_cmake_asks_for(self):
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            cmake = f.read()
        modules = []
        for m in re.finditer(r"pkg_check_modules\(\w+ REQUIRED IMPORTED_TARGET ([^)]+)\)", cmake):
            modules += m.group(1).split()
        self.assertIn("libuv", modules)
        pkgs = set(self.df.apt_packages(self.df.stages[0]))
        for mod in modules:
            pc = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True,
                                text=True)
            self.assertEqual(pc.returncode, 0, "pkg-config does not know " + mod)
            owner = package_of(os.path.join(pc.stdout.strip(), mod + ".pc"))
            self.assertIn(owner, pkgs, "%s.pc comes from %s" % (mod, owner))
        self.assertIn(package_of("/usr/share/llhttp/llhttp.c"), pkgs)
        self.assertIn("build-essential", pkgs)
        self.assertIn("cmake", pkgs)

    def test_runtime_libraries_cover_the_binary(self):
        awf.need_tool("readelf")
        pkgs = set(self.df.apt_packages(self.df.final))
        libs = linked_libraries(awf.proxy_binary())
        self.assertIn("libuv.so.1", libs)
        for soname, path in libs.items():
            if BASE_LIBS.match(soname):
                continue
            self.assertIsNotNone(path, "%s not found by ldd" % soname)
            owner = package_of(path)
            self.assertIn(owner, pkgs, "%s (%s) is not installed in the final stage" % (
                soname, owner))
        for extra in self.RUNTIME_EXTRA:
            self.assertIn(extra, pkgs)

    def test_packages_exist_in_debian(self):
        """Every package named exists in this machine's Debian release (the images' release),
        by the local apt metadata; skipped where the package lists were removed."""
        apt = awf.need_tool("apt-cache")
        wanted = {p for st in self.df.stages for p in self.df.apt_packages(st)}
        out = subprocess.run([apt, "show", "--no-all-versions"] + sorted(wanted),
                             capture_output=True, text=True).stdout
        found = set(re.findall(r"^Package: (\S+)$", out, re.M))
        if "libuv1" not in found:
            self.skipTest("no apt package lists on this machine")
        self.assertEqual(sorted(wanted - found), [], "not Debian packages")

    def test_entrypoint(self):
        ep = exec_form(self.df.ops(self.df.final, "ENTRYPOINT")[-1])
        copies = self.df.ops(self.df.final, "COPY")
        src = "containers/%s" % self.ENTRYPOINT_SCRIPT
        self.assertIn("%s %s" % (src, ep[0]), copies, "the entrypoint is not the script")
        self.assertTrue(os.path.exists(os.path.join(ROOT, src)))
        self.assertTrue(any("chmod 0755 " + ep[0] in r for r in self.df.ops(self.df.final,
                                                                               "RUN")))
        self.assertEqual(self.df.ops(self.df.final, "STOPSIGNAL"), ["SIGTERM"])

    def test_dockerignore_keeps_build_dirs_out(self):
        path = os.path.join(CONTAINERS, self.PATH + ".dockerignore")
        with open(path) as f:
            rules = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        for r in (".git", "build*"):
            self.assertIn(r, rules)


class ProxyDockerfileTest(DockerfileRules, unittest.TestCase):
    PATH = "proxy/Dockerfile"
    ENTRYPOINT_SCRIPT = "proxy/entrypoint.sh"
    # the healthcheck's nc; the trust store ssl-bump verifies origins with
    RUNTIME_EXTRA = ("netcat-openbsd", "ca-certificates")

    def test_expose_3128_and_3129(self):
        # 3129: the ssl-bump listener AWF's --ssl-bump configs name.
        self.assertEqual(self.df.ops(self.df.final, "EXPOSE"), ["3128 3129"])

    def test_healthcheck_is_nc_z_localhost_3128(self):
        hc = self.df.ops(self.df.final, "HEALTHCHECK")
        self.assertEqual(len(hc), 1)
        opts, _, cmd = hc[0].partition("CMD ")
        self.assertEqual(exec_form(cmd), ["nc", "-z", "localhost", "3128"])
        self.assertNotIn("--start-period=0", opts)

    def test_runs_as_proxy_owning_its_directories(self):
        # AWF's contract: USER proxy, and proxy (Debian's uid/gid 13) owns what it writes ...
        self.assertEqual(self.df.ops(self.df.final, "USER"), ["proxy"])
        runs = " ".join(self.df.ops(self.df.final, "RUN"))
        self.assertIn('test "$(id -u proxy):$(id -g proxy)" = "13:13"', runs)
        self.assertIn("chown 13:13 /etc/squid /var/log/squid /var/spool/squid "
                      "/var/spool/squid_ssl_db /var/run/squid", runs)
        # ... bash and su for AWF's compose command, setpriv for the root start ...
        self.assertIn("for t in bash su setpriv base64 nc;", runs)
        self.assertIn("containers/proxy/entrypoint.sh /usr/local/bin/entrypoint.sh",
                      self.df.ops(self.df.final, "COPY"))
        # ... and a root start drops to 13:13 without a way back before anything else.
        with open(os.path.join(CONTAINERS, "proxy", "entrypoint.sh")) as f:
            script = f.read()
        self.assertIn("PROXY_UID=13\n", script)
        self.assertIn("PROXY_GID=13\n", script)
        self.assertRegex(script, r'\n    exec setpriv --reuid="\$PROXY_UID" --regid="\$PROXY_GID" '
                                 r'--clear-groups --no-new-privs -- \\\n')


class AgentInitDockerfileTest(DockerfileRules, unittest.TestCase):
    PATH = "agent-init/Dockerfile"
    ENTRYPOINT_SCRIPT = "agent-init/entrypoint.sh"
    RUNTIME_EXTRA = ("iptables", "iproute2")

    def test_setup_iptables_name(self):
        runs = " ".join(self.df.ops(self.df.final, "RUN"))
        self.assertIn("ln -s awf-agent-init /usr/local/bin/setup-iptables.sh", runs)
        self.assertEqual(exec_form(self.df.ops(self.df.final, "CMD")[-1]), ["apply"])


# ---------------------------------------------------------------- entrypoints


class ShellTest(unittest.TestCase):
    SCRIPTS = [ns.PROXY_ENTRYPOINT, ns.INIT_ENTRYPOINT]

    def test_posix_sh_syntax(self):
        dash = awf.need_tool("dash")  # Debian's /bin/sh: what the slim image runs them with
        for s in self.SCRIPTS:
            with open(s) as f:
                self.assertEqual(f.readline().strip(), "#!/bin/sh", s)
            p = subprocess.run([dash, "-n", s], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.access(s, os.X_OK), s + " is not executable")

    def test_shellcheck(self):
        sc = awf.need_tool("shellcheck")
        p = subprocess.run([sc, "-s", "sh", "-S", "style"] + self.SCRIPTS, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


# ---------------------------------------------------------------- compose.example.yml


def _scalar(s):
    s = s.strip()
    if s.startswith("[") and s.endswith("]"):
        inner = s[1:-1].strip()
        return [_scalar(x) for x in inner.split(",")] if inner else []
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    return s


def parse_yaml(text):
    """The block-style YAML subset compose.example.yml is written in: mappings, "- " lists
    (of scalars or of mappings), flow lists of scalars, quoted or plain scalars, whole-line
    comments."""
    lines = []
    for raw in text.splitlines():
        s = raw.strip()
        if s and not s.startswith("#"):
            lines.append((len(raw) - len(raw.lstrip(" ")), s))

    def block(i, indent):
        if lines[i][1].startswith("- "):
            out = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                item = lines[i][1][2:]
                if re.match(r"^[\w.-]+:( |$)", item):
                    # A mapping inside a list item: its further keys are indented by 2 more.
                    lines[i] = (indent + 2, item)
                    val, i = mapping(i, indent + 2)
                    out.append(val)
                else:
                    out.append(_scalar(item))
                    i += 1
            return out, i
        return mapping(i, indent)

    def mapping(i, indent):
        out = {}
        while i < len(lines) and lines[i][0] == indent:
            key, _, rest = lines[i][1].partition(":")
            rest = rest.strip()
            i += 1
            if rest:
                out[key] = _scalar(rest)
            elif i < len(lines) and lines[i][0] > indent:
                out[key], i = block(i, lines[i][0])
            else:
                out[key] = None
        return out, i

    doc, i = block(0, 0)
    if i != len(lines):
        raise ValueError("unparsed from line: %r" % (lines[i],))
    return doc


class ComposeTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(CONTAINERS, "compose.example.yml")) as f:
            self.doc = parse_yaml(f.read())
        self.svc = self.doc["services"]

    def test_proxy_service_contract(self):
        s = self.svc["squid-proxy"]
        self.assertEqual(s["container_name"], "awf-squid")
        self.assertEqual(s["networks"]["awf-net"]["ipv4_address"], "172.30.0.10")
        self.assertEqual(s["ports"], ["3128:3128"])
        self.assertIn("./squid-logs:/var/log/squid:rw", s["volumes"])
        self.assertIn("AWF_SQUID_CONFIG_B64", s["environment"])
        self.assertEqual(s["healthcheck"]["test"], ["CMD", "nc", "-z", "localhost", "3128"])
        self.assertEqual(s["stop_grace_period"], "2s")
        self.assertEqual(set(s["cap_drop"]), {"NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE",
                                              "MKNOD", "AUDIT_WRITE", "SETFCAP"})
        self.assertNotIn("cap_add", s)
        self.assertEqual(s["build"]["dockerfile"], "containers/proxy/Dockerfile")

    def test_agent_and_init_services(self):
        a = self.svc["agent"]
        self.assertEqual(a["container_name"], "awf-agent")
        self.assertEqual(a["networks"]["awf-net"]["ipv4_address"], "172.30.0.20")
        self.assertEqual(a["depends_on"]["squid-proxy"]["condition"], "service_healthy")
        self.assertNotIn("NET_ADMIN", a.get("cap_add") or [])
        i = self.svc["iptables-init"]
        self.assertEqual(i["container_name"], "awf-iptables-init")
        self.assertEqual(i["network_mode"], "service:agent")
        self.assertEqual(i["cap_add"], ["NET_ADMIN", "NET_RAW"])
        self.assertEqual(i["cap_drop"], ["ALL"])
        self.assertEqual(i["build"]["dockerfile"], "containers/agent-init/Dockerfile")
        for k in ("SQUID_PROXY_HOST", "SQUID_PROXY_PORT", "AWF_DNS_SERVERS",
                  "AWF_ALLOW_HOST_PORTS"):
            self.assertIn(k, i["environment"])
        self.assertEqual(i["environment"]["SQUID_PROXY_HOST"], "172.30.0.10")
        # Both see the same init directory: the audit file and the ready file.
        self.assertIn("./init:/tmp/awf-init:rw", i["volumes"])
        self.assertIn("./init:/tmp/awf-init:rw", a["volumes"])

    def test_network(self):
        n = self.doc["networks"]["awf-net"]
        self.assertEqual(n["ipam"]["config"], [{"subnet": "172.30.0.0/24"}])
        self.assertEqual(n["driver_opts"]["com.docker.network.bridge.name"], "fw-bridge")

    def test_build_contexts_exist(self):
        for name in ("squid-proxy", "iptables-init"):
            b = self.svc[name]["build"]
            ctx = os.path.normpath(os.path.join(CONTAINERS, b["context"]))
            self.assertEqual(ctx, os.path.normpath(ROOT))
            self.assertTrue(os.path.exists(os.path.join(ctx, b["dockerfile"])))


if __name__ == "__main__":
    unittest.main(verbosity=2)

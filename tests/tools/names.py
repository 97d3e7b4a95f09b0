#!/usr/bin/env python3
"""Checks the naming rule of README's Layout section on one module's objects, read with `nm`:
a module's API is awf_<module>_* and declared in its public header; what only the files of the
module share is <module>_* and declared in an internal header next to them; a function of one
file is static. So, for every symbol a file of the module defines and exports:
  - an API name (awf_<module>_*) must be declared in a public header, and used by some code
    outside the module (tests do not count: they may include the internal headers);
  - an internal name (<module>_*) must be declared in an internal header, in no public one, and
    used by another file of the module or by a test (else it is a static);
  - any other name is an error.
Declared means named in the header's code (comments and strings left out).

Usage: names.py --module M --dir SRC [--public H]... [--internal H]... [--api-prefix P]...
                [--used-in DIR]... [--allow NAME]... FILE...
  FILE          the module's objects: .o files or static libraries (one member per source file)
  --module      the module's name: internal prefix M_, API prefix awf_M_
  --dir         the module's source folder, for messages and the internal headers' default
  --public      a public header (default: SRC/M.h); --public none: the module has no API
  --internal    an internal header (default: every other .h in SRC); none: no internals
  --api-prefix  an API prefix instead of awf_M_ (common/: awf_, one small API per header)
  --used-in     a folder whose .c and .h files count as code outside the module
  --tests-in    a folder of tests: an internal name they use may stay out of static
  --allow       a name exempt from every rule (main)

Exit 0 when the module keeps the rule; 1 with one line per violation (file: name: what is
wrong) on stderr; 2 when nm fails or FILE names no object."""
import argparse
import os
import re
import sys

from nmread import nm_symbols


def nm_members(path):
    """{source file: (exported definitions, undefined references)} of an object or archive."""
    members = {}
    for name, kind, sym in nm_symbols(path, "names"):
        # sanitizer bookkeeping (__odr_asan.x, __asan_*) is the compiler's, not ours
        if sym.startswith("__") or "." in sym:
            continue
        d, u = members.setdefault(name, (set(), set()))
        if kind == "U":
            u.add(sym)
        elif kind in "TDBRVWG":  # upper case: exported; lower case is a file's own
            d.add(sym)
    return members


def code_of(path):
    """The C text of a file with comments and string literals blanked."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', " ", text, flags=re.S)


def identifiers(paths):
    words = set()
    for p in paths:
        words.update(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", code_of(p)))
    return words


def sources(dirs):
    for d in dirs:
        for top, subdirs, files in os.walk(d):
            subdirs[:] = [s for s in subdirs if not s.startswith(("build", "."))]
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.join(top, f)


def main():
    ap = argparse.ArgumentParser(description="the naming rule, from nm and the headers")
    ap.add_argument("--module", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--public", action="append", default=[])
    ap.add_argument("--internal", action="append", default=[])
    ap.add_argument("--api-prefix", action="append", default=[])
    ap.add_argument("--used-in", action="append", default=[])
    ap.add_argument("--tests-in", action="append", default=[])
    ap.add_argument("--allow", action="append", default=[])
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()

    m = a.module
    public = [] if a.public == ["none"] else a.public or [os.path.join(a.dir, f"{m}.h")]
    if a.internal == ["none"]:
        internal = []
    elif a.internal:
        internal = a.internal
    else:
        mine = {os.path.abspath(p) for p in public}
        internal = sorted(os.path.join(a.dir, f) for f in os.listdir(a.dir)
                          if f.endswith(".h") and os.path.abspath(os.path.join(a.dir, f)) not in mine)
    for h in public + internal:
        if not os.path.isfile(h):
            print(f"names: {h}: no such header", file=sys.stderr)
            return 2
    api_prefixes = tuple(a.api_prefix or [f"awf_{m}_"])
    int_prefix = f"{m}_"

    members = {}
    # CMake hands a target's objects ($<TARGET_OBJECTS:...>) as one ;-separated argument
    files = [f for arg in a.files for f in arg.split(";") if f]
    for f in files:
        if not os.path.exists(f):
            print(f"names: {f}: no such file", file=sys.stderr)
            return 2
        members.update(nm_members(f))
    if not members:
        print("names: no object files given", file=sys.stderr)
        return 2

    in_public = identifiers(public)
    in_internal = identifiers(internal)
    outside = identifiers(sources(a.used_in)) if a.used_in else None
    tested = identifiers(sources(a.tests_in))
    where = os.path.basename(os.path.normpath(a.dir))
    errors, count = [], 0
    for name in sorted(members):
        defined, _ = members[name]
        for sym in sorted(defined):
            if sym in a.allow:
                continue
            count += 1
            users = [n for n, (_, u) in members.items() if n != name and sym in u]
            at = f"{where}/{name}: {sym}"
            if sym.startswith(api_prefixes):
                if sym not in in_public:
                    errors.append(f"{at}: an API name ({'/'.join(api_prefixes)}*) that no public "
                                  f"header ({', '.join(public) or 'none'}) declares")
                elif outside is not None and sym not in outside:
                    errors.append(f"{at}: API, but no code outside {where}/ uses it: make it "
                                  f"{int_prefix}* in an internal header"
                                  + ("" if users else ", or static"))
            elif sym.startswith(int_prefix):
                if sym in in_public:
                    errors.append(f"{at}: an internal name in a public header")
                elif sym not in in_internal:
                    errors.append(f"{at}: an internal name that no internal header declares")
                elif not users and sym not in tested:
                    errors.append(f"{at}: used by no other file of {where}/ nor by a test: "
                                  "make it static")
            else:
                errors.append(f"{at}: neither {'/'.join(api_prefixes) or 'an API'}* nor {int_prefix}*")
    for e in errors:
        print(f"names: {e}", file=sys.stderr)
    if not errors:
        print(f"names: {count} exported names in {len(members)} files of {where}/, all by the rule")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

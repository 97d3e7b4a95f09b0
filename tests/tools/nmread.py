"""Reads a module's objects with `nm`, for callcycles.py and names.py."""
import os
import re
import subprocess
import sys


def nm_symbols(path, tool):
    """(member, kind, symbol) for each symbol of an object file or an archive; member is the
    object's file name without .o (cache.c for CMake's cache.c.o). Exits naming tool when nm
    fails."""
    out = subprocess.run(["nm", "-A", path], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{tool}: nm {path}: {out.stderr.strip()}")
    # nm -A: "lib.a:member.o:0000 T sym", "file.o:0000 T sym", "lib.a:member.o:         U sym"
    for line in out.stdout.splitlines():
        m = re.match(r"^(.*?):\s*(?:[0-9a-fA-F]+)?\s+([A-Za-z])\s+(\S+)$", line)
        if not m:
            continue
        where, kind, sym = m.groups()
        member = where.split(":")[-1] if path.endswith(".a") else os.path.basename(where)
        yield re.sub(r"\.o(bj)?$", "", member), kind, sym

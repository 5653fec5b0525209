#!/usr/bin/env bash
# Makes what the Compose stack runs with: a private CA, the engine's TLS certificate (names engine,
# engine-gpu, localhost, 127.0.0.1), a client certificate for mutual TLS, and a bearer token.
# Into DATASENTINEL_SECRETS_DIR (default docker/secrets, git-ignored); keeps existing secrets unless
# FORCE=1. Compose mounts the files as secrets (/run/secrets/...); the CA key is never mounted.
#   ./scripts/docker/makeSecrets.sh            FORCE=1 ./scripts/docker/makeSecrets.sh (rotate)
# Rotating the certificate needs no engine restart: it rereads the files on the next connection.
source "$(dirname "$0")/lib.sh"
dir="${DATASENTINEL_SECRETS_DIR:-$REPO_ROOT/docker/secrets}"
if [ "${FORCE:-0}" != 1 ] && [ -s "$dir/server.pem" ] && [ -s "$dir/token" ]; then
  echo "secrets already in $dir (FORCE=1 makes new ones)"
  exit 0
fi
command -v openssl >/dev/null || { echo "error: openssl is needed to make the secrets" >&2; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"  # only the owner (and the daemon, as root) can reach the files
cd "$dir"
umask 077

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1"; }
sign() {  # sign NAME EXTENSIONS: a certificate for NAME.key, signed by the CA
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf '%s\n' "$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

if [ "${FORCE:-0}" = 1 ] || [ ! -s ca.pem ]; then
  key ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=DataSentinel local CA" -days 825 -out ca.pem
fi
key server.key
sign server "subjectAltName=DNS:engine,DNS:engine-gpu,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
key client.key
sign client "extendedKeyUsage=clientAuth"
openssl rand -hex 32 >token
# Readable inside the containers (they run as uid 10001; compose bind-mounts each file); the
# folder's 0700 keeps other users of this machine out. The CA key stays private.
chmod 644 ca.pem server.pem server.key client.pem client.key token
chmod 600 ca.key
echo "made a CA, server and client certificates and a token in $dir"

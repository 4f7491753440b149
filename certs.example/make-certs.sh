#!/bin/sh
# Local certificates for a Culex cluster (development and tests; never commit the output).
#
#   certs.example/make-certs.sh [OUT_DIR] [HOST_NAME]
#
# OUT_DIR    where to write (default: certs). Created with mode 700.
# HOST_NAME  an extra name (or IP address) the server certificate is valid for, besides
#            localhost, 127.0.0.1 and ::1 - e.g. the LAN name devices use. Also CULEX_CERT_HOST.
#
# Writes:
#   ca.crt      the local CA devices and browsers must trust (mosquitto_pub --cafile ca.crt)
#   ca.key      its key (kept to sign again; re-used when present)
#   server.crt  server certificate for the names above, signed by the CA
#   server.key  its key
#   server.pem  server.crt + server.key in one file, what HAProxy's `crt` wants
# Keys are EC P-256. Running it again keeps the CA and makes a new server certificate.
set -eu

OUT=${1:-certs}
HOST=${2:-${CULEX_CERT_HOST:-}}
DAYS_CA=3650
# browsers refuse server certificates valid for more than 398 days
DAYS_SERVER=397

command -v openssl >/dev/null 2>&1 || { echo "make-certs: openssl not found (sudo apt-get install -y openssl)" >&2; exit 1; }

umask 077
mkdir -p "$OUT"
cd "$OUT"

if [ ! -f ca.key ] || [ ! -f ca.crt ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout ca.key -out ca.crt -days "$DAYS_CA" -subj "/O=Culex/CN=Culex local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

SAN="DNS:localhost,IP:127.0.0.1,IP:::1"
CN=localhost
if [ -n "$HOST" ] && [ "$HOST" != localhost ] && [ "$HOST" != 127.0.0.1 ]; then
  case "$HOST" in
    *[!0-9.]*) case "$HOST" in *:*) SAN="$SAN,IP:$HOST" ;; *) SAN="$SAN,DNS:$HOST" ;; esac ;;
    *) SAN="$SAN,IP:$HOST" ;;
  esac
  CN=$HOST
fi

EXT=$(mktemp)
trap 'rm -f "$EXT" server.csr' EXIT
cat >"$EXT" <<EXT_END
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$SAN
EXT_END

openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout server.key -out server.csr -subj "/O=Culex/CN=$CN" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
  -days "$DAYS_SERVER" -extfile "$EXT" -out server.crt 2>/dev/null
cat server.crt server.key >server.pem
chmod 644 ca.crt server.crt

echo "make-certs: CA $(pwd)/ca.crt; server certificate for $SAN in $(pwd)/server.pem"

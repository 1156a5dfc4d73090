#!/usr/bin/env bash
# Makes a development CA and one certificate per compose service, for
# docker-compose.tls.yml: DIR/{model-store,control-plane,data-plane}/
# {ca.crt,tls.crt,tls.key}. Each certificate names its service, localhost
# and 127.0.0.1, and serves as server and client certificate. For
# development only: the CA key stays in DIR/ca.key.
#
#   deploy/compose/dev-certs.sh [DIR]      (default: tls)
set -euo pipefail
dir=${1:-tls}
days=${DAYS:-365}
mkdir -p "$dir"
if [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" \
        -subj "/CN=hotswap development CA" 2>/dev/null
fi
for service in model-store control-plane data-plane; do
    out="$dir/$service"
    mkdir -p "$out"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$out/tls.key" -out "$out/tls.csr" -subj "/CN=$service" 2>/dev/null
    openssl x509 -req -in "$out/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$out/tls.crt" -days "$days" \
        -extfile <(printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$service") 2>/dev/null
    rm "$out/tls.csr"
    cp "$dir/ca.crt" "$out/ca.crt"
    # The image runs as uid 10001, which must read the key.
    chmod 0755 "$out"
    chmod 0644 "$out/ca.crt" "$out/tls.crt" "$out/tls.key"
done
echo "certificates in $dir/ (CA: $dir/ca.crt)"

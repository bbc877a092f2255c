#!/bin/sh
# Makes a throw-away CA and a server certificate for 127.0.0.1/localhost signed by it, plus a
# second CA that signed nothing, in DIR: ca.pem, server.pem, server.key, other-ca.pem.
set -eu
DIR=$1
mkdir -p "$DIR"
cd "$DIR"
[ -f server.pem ] && exit 0
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Connector Test CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Unrelated Test CA" \
  -keyout other-ca.key -out other-ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr \
  2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
chmod 644 server.pem ca.pem other-ca.pem
chmod 600 server.key ca.key other-ca.key

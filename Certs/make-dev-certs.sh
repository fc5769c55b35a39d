#!/usr/bin/env bash
# Makes a development CA, one leaf certificate per role with the SAN URI identity
# urn:imaging-gateway:ROLE:ORG-CODE, a revoked leaf, and a CRL that lists it.
# Development only: keys are unencrypted. See Certs/README.md for production.
#
# usage: Certs/make-dev-certs.sh OUT_DIR [ORG_CODE]
#   CRL_DAYS=N      CRL validity in days (default 30; 0 makes a CRL already past nextUpdate)
set -euo pipefail

out=${1:?usage: make-dev-certs.sh OUT_DIR [ORG_CODE]}
org=${2:-91610000MA6TG0001A}
crl_days=${CRL_DAYS:-30}
roles="node hospital clinic reader ai-worker operator token-client"

command -v openssl >/dev/null || { echo "openssl CLI not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
cd "$out"
umask 077
export SAN="DNS:localhost"
: > index.txt
echo 1000 > serial
echo 1000 > crlnumber

cat > ca.cnf <<CNF
[ca]
default_ca = dev
[dev]
dir = .
database = index.txt
serial = serial
crlnumber = crlnumber
new_certs_dir = .
certificate = ca.pem
private_key = ca-key.pem
default_md = sha256
default_days = 397
default_crl_days = 30
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ImagingGateway development CA
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
authorityKeyIdentifier = keyid
subjectAltName = \${ENV::SAN}
CNF

openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
openssl req -new -x509 -config ca.cnf -extensions ca_ext -key ca-key.pem -days 825 -out ca.pem

issue() { # name uri
  local name=$1 uri=$2
  openssl ecparam -name prime256v1 -genkey -noout -out "$name-key.pem"
  openssl req -new -key "$name-key.pem" -subj "/O=ImagingGateway development/CN=dev $name" -out "$name.csr"
  SAN="URI:$uri,DNS:localhost,IP:127.0.0.1,IP:::1" openssl ca -batch -config ca.cnf -extensions leaf_ext \
    -in "$name.csr" -out "$name.pem" -notext 2>/dev/null
  rm -f "$name.csr"
}

for role in $roles; do
  issue "$role" "urn:imaging-gateway:$role:$org"
done
issue revoked-clinic "urn:imaging-gateway:clinic:$org"
openssl ca -config ca.cnf -revoke revoked-clinic.pem -crl_reason keyCompromise 2>/dev/null
if [ "$crl_days" -gt 0 ]; then
  openssl ca -config ca.cnf -gencrl -crldays "$crl_days" -out crl.pem 2>/dev/null
else
  # A CRL whose nextUpdate is already past, to check that verification fails closed.
  openssl ca -config ca.cnf -gencrl -crl_lastupdate "$(date -u -d '-2 days' +%y%m%d%H%M%SZ)" \
    -crl_nextupdate "$(date -u -d '-1 day' +%y%m%d%H%M%SZ)" -out crl.pem 2>/dev/null
fi
chmod 644 ./*.pem
chmod 600 ./*-key.pem
rm -f ./*.old index.txt.attr* 1*.pem
echo "dev certificates in $out: ca.pem, crl.pem, <role>.pem + <role>-key.pem for: $roles revoked-clinic"

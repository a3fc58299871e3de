#!/bin/sh
# Creates the secret files compose.yaml mounts. Existing files are kept, so running it
# again never rotates a secret; every machine of one deployment needs the same files
# (copy the directory, do not run this on each machine).
#   sh deploy/make-secrets.sh [DIR]     DIR defaults to $PROMOTER_SECRETS_DIR or ./secrets
# Needs openssl. S3 storage also needs DIR/s3_credentials, written by hand (compose.s3.yaml).
set -eu
dir=${1:-${PROMOTER_SECRETS_DIR:-./secrets}}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"

# Values without a trailing newline: the file's bytes are the secret.
create() {
    if [ ! -e "$dir/$1" ]; then
        printf '%s' "$2" >"$dir/$1.tmp"
        mv "$dir/$1.tmp" "$dir/$1"
        echo "created $dir/$1"
    fi
}

for name in secret_key notify_secret registry_http_secret postgres_password; do
    create "$name" "$(openssl rand -hex 32)"
done
create admin_password "$(openssl rand -hex 12)"
# A Fernet key: 32 random bytes, URL-safe base64.
create credentials_key "$(openssl rand -base64 32 | tr '+/' '-_')"
create database_url "postgres://promoter:$(cat "$dir/postgres_password")@postgres:5432/promoter"
if [ ! -e "$dir/token_key" ]; then
    # 2>/dev/null: OpenSSL prints progress dots; a failure still stops the script.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/token_key" \
        2>/dev/null || { echo "openssl could not create $dir/token_key" >&2; exit 1; }
    echo "created $dir/token_key"
fi
if [ ! -e "$dir/token_cert" ]; then
    openssl req -x509 -new -key "$dir/token_key" -days 3650 -subj "/CN=promoter token signer" \
        -out "$dir/token_cert"
    echo "created $dir/token_cert"
fi

# Compose bind-mounts these files with their host mode: 0444 lets the containers' users
# (10001, postgres) read them; the 0700 directory keeps other users of the host out.
chmod 444 "$dir"/*

#!/bin/sh
# The compose stack's secrets, made once: the database password and the API key the app
# sends to the CMT service. Files in deploy/secrets/ (git ignores them); existing ones are kept.
set -eu
dir="$(dirname "$0")/secrets"
mkdir -p "$dir"
chmod 700 "$dir"  # only root on the host reaches them; the containers get the files alone
for name in db_password cmt_api_key; do
    if [ ! -s "$dir/$name" ]; then
        od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$dir/$name"
        chmod 644 "$dir/$name"  # readable by the containers' users (10001, postgres)
        echo "made $dir/$name"
    fi
done

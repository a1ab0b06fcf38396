#!/bin/sh
# First start: a cluster whose superuser is POSTGRES_USER with the password in
# POSTGRES_PASSWORD_FILE (scram-sha-256 over TCP; the socket stays inside the container), and
# the database POSTGRES_DB; a failed first start leaves PGDATA empty, to be tried again. Then
# the server, on 127.0.0.1 unless POSTGRES_LISTEN says otherwise.
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -r "${POSTGRES_PASSWORD_FILE:-}" ] || { echo "POSTGRES_PASSWORD_FILE is not readable" >&2; exit 1; }
    {
        initdb --username="$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" \
            --auth-host=scram-sha-256 --auth-local=trust --encoding=UTF8 > /dev/null \
        && pg_ctl -w -o "-c listen_addresses='' -c unix_socket_directories=/tmp" start > /dev/null \
        && { [ "$POSTGRES_DB" = postgres ] || createdb -h /tmp -U "$POSTGRES_USER" "$POSTGRES_DB"; } \
        && pg_ctl -w stop > /dev/null
    } || { echo "first start failed; $PGDATA emptied" >&2; rm -rf "${PGDATA:?}"/*; exit 1; }
    echo "initialised $PGDATA: user $POSTGRES_USER, database $POSTGRES_DB"
fi
exec postgres -c listen_addresses="${POSTGRES_LISTEN:-127.0.0.1}" -c unix_socket_directories=/tmp "$@"

#!/bin/sh
# Runs lkjwt-fcgi under spawn-fcgi in the foreground, for supervisors other than systemd (runit, s6,
# supervisord, a terminal); with systemd prefer lkjwt-fcgi.socket + lkjwt-fcgi.service.
#
# `-n` keeps spawn-fcgi from forking: it binds the socket, puts it on fd 0 and execs the service, so
# the supervisor watches the service itself and gets its stderr log (without -n spawn-fcgi detaches
# and sends stdout/stderr to /dev/null). spawn-fcgi's default socket mode makes nginx fail with
# EACCES (502), hence the explicit owner and mode.
#
# Configuration: the LIVEKIT_* variables (see the README), taken from the environment and from
# $LKJWT_ENV_FILE (default /etc/lkjwt-fcgi/lkjwt-fcgi.env, KEY=value lines, the same file the systemd
# unit reads), plus:
#   LKJWT_SOCKET        FastCGI socket path                      (default /run/lkjwt-fcgi/fcgi.sock)
#   LKJWT_SOCKET_OWNER  user and group owning the socket, 0660   (default www-data, nginx's workers)
#   LKJWT_USER          user the service runs as when started as root; empty: stay root
#                       (default www-data; a dedicated system user is better)
#   LKJWT_BINARY        the service                              (default /usr/local/bin/lkjwt-fcgi)
#   LKJWT_THREADS       worker threads                           (default 16)
set -eu

env_file=${LKJWT_ENV_FILE-/etc/lkjwt-fcgi/lkjwt-fcgi.env}
if [ -n "$env_file" ] && [ -r "$env_file" ]; then
    set -a
    . "$env_file"
    set +a
fi

socket=${LKJWT_SOCKET:-/run/lkjwt-fcgi/fcgi.sock}
owner=${LKJWT_SOCKET_OWNER:-www-data}
user=${LKJWT_USER-www-data}
binary=${LKJWT_BINARY:-/usr/local/bin/lkjwt-fcgi}
threads=${LKJWT_THREADS:-16}

mkdir -p "$(dirname "$socket")"
set -- -n -s "$socket" -M 0660
if [ "$(id -u)" = 0 ]; then
    set -- "$@" -U "$owner" -G "$owner"
    if [ -n "$user" ]; then
        set -- "$@" -u "$user" -g "$user"
        # The service creates its default job store directory itself, but an unprivileged user
        # cannot create it under /var/lib.
        if [ -z "${LIVEKIT_JOBS_DB:-}" ] && [ -z "${LIVEKIT_REDIS_URL:-}" ]; then
            install -d -m 0700 -o "$user" -g "$user" /var/lib/lkjwt-fcgi
        fi
    fi
fi
exec spawn-fcgi "$@" -- "$binary" --threads "$threads"

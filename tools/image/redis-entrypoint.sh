#!/bin/sh
# The official redis image builds redis-server with protected mode off, since a container's
# clients never come from its loopback; Debian's binary keeps it on, so say it here, before the
# compose file's own arguments.
set -e
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"

#!/bin/sh
# The entrypoint of the official node image, for the base image that smoke.sh builds: a first
# argument that is a flag, or no command on PATH, runs under node (`docker run IMAGE --version`).
set -e

# The part inside `{}` works around dash's `command -v` answering for a file that is not
# executable (https://bugs.debian.org/874264).
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"

#!/bin/sh
# The image's entrypoint: `web` (default), `worker`, `init`, or any other command as given.
# Settings come from the environment; secrets from files named by the *_FILE variables.
set -eu
cd "$(dirname "$0")/.."

case "${1:-web}" in
web)
    [ "$#" -gt 0 ] && shift
    # Every gunicorn setting lives in the config file and reads PROMOTER_* variables.
    exec gunicorn --config deploy/gunicorn.conf.py "$@"
    ;;
worker)
    shift
    exec python manage.py worker --queue-name '*' "$@"
    ;;
init)
    shift
    # Once per deployment, before web and workers start: schema, built-in tasks, Admin.
    python manage.py migrate --noinput
    exec python manage.py bootstrap "$@"
    ;;
*)
    exec "$@"
    ;;
esac

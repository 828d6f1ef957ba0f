#!/usr/bin/env bash
# The container's entry point (Dockerfile ENTRYPOINT); it also runs as is from a checkout.
#   entrypoint.sh web [gunicorn flags]        gunicorn with gunicorn.conf.py (TLS from SSL_CERT_FILE/SSL_KEY_FILE)
#   entrypoint.sh worker [--queues a,b ...]   flask jobs worker
#   entrypoint.sh scheduler [--interval N]    flask jobs scheduler
#   entrypoint.sh migrate                     flask db upgrade (run once, by the database owner role)
#   entrypoint.sh COMMAND ...                 anything else, e.g. `flask --app wsgi doctor`
# web, worker and scheduler first empty PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess
# files must not outlive the processes that wrote them), then exec, so the server is the process
# that receives the container's SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

clear_metrics() {
  if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    flask --app wsgi metrics clear
  fi
}

command="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$command" in
  web)
    clear_metrics
    exec gunicorn --config gunicorn.conf.py "$@" wsgi:app
    ;;
  worker)
    clear_metrics
    exec flask --app wsgi jobs worker "$@"
    ;;
  scheduler)
    clear_metrics
    exec flask --app wsgi jobs scheduler "$@"
    ;;
  migrate)
    exec flask --app wsgi db upgrade "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac

#!/usr/bin/env bash
# Back up the portal's database now: pg_dump | gzip | AES-256 into BACKUP_DIR, then read it back and check it.
#   bash scripts/backup_database.sh            make one (needs BACKUP_PASSPHRASE or BACKUP_PASSPHRASE_FILE)
#   bash scripts/backup_database.sh --list     list the backups: name, time, size, verified
# Settings come from the environment as for the portal itself (DATABASE_URL, BACKUP_DIR, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
flask=(flask --app wsgi)
if [ -x .venv/bin/flask ]; then flask=(.venv/bin/flask --app wsgi); fi
case "${1:-}" in
  --list|-l|list) exec "${flask[@]}" backup list ;;
  "") exec "${flask[@]}" backup create ;;
  -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
esac

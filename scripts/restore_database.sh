#!/usr/bin/env bash
# Restore the portal's database from an encrypted backup.
#   bash scripts/restore_database.sh FILE [--yes] [--database-url URL]
#   bash scripts/restore_database.sh          (no FILE: list the backups to choose from)
# FILE is a path or a name in BACKUP_DIR. The whole file is checked (HMAC, decryption, every table)
# before the database is touched; then schema public is dropped and the dump loaded in ONE
# transaction, the migrations run and the row counts are printed. The passphrase comes from
# BACKUP_PASSPHRASE / BACKUP_PASSPHRASE_FILE or is asked for; --yes skips the confirmation;
# --database-url restores into another database (a staging copy) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
flask=(flask --app wsgi)
if [ -x .venv/bin/flask ]; then flask=(.venv/bin/flask --app wsgi); fi
if [ $# -eq 0 ]; then
  "${flask[@]}" backup list
  echo
  echo "usage: bash scripts/restore_database.sh FILE [--yes] [--database-url URL]"
  exit 2
fi
case "$1" in
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
exec "${flask[@]}" backup restore "$@"

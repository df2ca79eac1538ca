//! `make ha-demo`: the high-availability test's three-node Patroni cluster
//! (`pg_jobs_itest::ha`), with a one-second job and two daemons, left
//! running with instructions. `make ha-demo-stop` ends it.

use pg_jobs_itest::ha::HaCluster;
use std::time::Duration;

fn main() {
    let mut ha = HaCluster::start("demo", true);
    ha.keep = true;
    let l = ha.leader().expect("a leader");
    let mut p = ha.connect(l, "postgres").expect("the leader accepts connections");
    p.batch_execute("CREATE DATABASE app")
        .expect("CREATE DATABASE app");
    let mut s = ha.connect(l, "app").expect("app accepts connections");
    s.batch_execute(
        "CREATE EXTENSION pg_jobs;
         CREATE TABLE ticks (node int, at timestamptz DEFAULT clock_timestamp());
         SELECT jobs.schedule('tick', '1 second', 'INSERT INTO ticks (node) VALUES (current_setting(''port'')::int)');
         SELECT jobs.daemon('watch', 'SELECT pg_sleep(3600)', run_on => 'standby');",
    )
    .expect("the demo's jobs");
    ha.wait_healthy(Duration::from_secs(120), true);
    let root = ha.root.display();
    println!("\nA three-node Patroni cluster with pg_jobs is running (synchronous_mode on).\n");
    for (i, n) in ha.nodes.iter().enumerate() {
        println!(
            "  {}  PostgreSQL 127.0.0.1:{}  Patroni REST 127.0.0.1:{}{}",
            n.name,
            n.pg_port,
            n.rest_port,
            if i == l { "  (leader)" } else { "" }
        );
    }
    let leader = &ha.nodes[l];
    println!(
        "\nLook:\n  patronictl -c {root}/n1/patroni.yml list\n  \
         psql -h 127.0.0.1 -p {} -U postgres app -c 'SELECT node, count(*) FROM ticks GROUP BY 1'\n  \
         psql -h 127.0.0.1 -p {} -U postgres app -c 'SELECT * FROM jobs.workers'\n\
         Fail it over:\n  patronictl -c {root}/n1/patroni.yml switchover --force\n  \
         kill -9 $(head -1 {root}/{}/data/postmaster.pid)\n\
         Then count ticks per node again: the one-second job goes on on the new leader.\n\
         Stop it all: make ha-demo-stop",
        leader.pg_port, leader.pg_port, leader.name
    );
}

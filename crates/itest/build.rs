//! The fingerprint of the extension's sources this test run expects the
//! installed library to carry (see `pg_jobs_core::build_id`).

fn main() {
    pg_jobs_core::build_id::emit_cargo_directives(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    );
}

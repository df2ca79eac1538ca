//! Stamps the library with a fingerprint of its sources
//! (`pg_jobs_core::build_id`), shown as the setting `pg_jobs.build_id`.

fn main() {
    pg_jobs_core::build_id::emit_cargo_directives(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    );
}

//! The fingerprint of the extension's sources this test run expects the
//! installed library to carry (see `pg_jobs_core::build_id`).

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for input in pg_jobs_core::build_id::INPUTS {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    println!(
        "cargo:rustc-env=PG_JOBS_BUILD_ID={}",
        pg_jobs_core::build_id::of_workspace(&root)
    );
}

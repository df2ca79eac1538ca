//! The fingerprint of the extension's sources this test run expects the
//! installed library to carry (see `pg_jobs_core::build_id`).

fn main() {
    // Read when the script runs: `env!` would bake in the directory the
    // script was compiled for, and cargo reuses a compiled build script in
    // another checkout that shares the target directory (a git worktree).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    pg_jobs_core::build_id::emit_cargo_directives(std::path::Path::new(&manifest_dir), "../..");
}

//! A fingerprint of the sources a pg_jobs library is built from, so the
//! integration tests can refuse to run against an installed library that
//! is not the one just built (a stale install must never pass a run).
//!
//! Both sides compute it with this one function at build time: the
//! extension exposes it as the read-only setting `pg_jobs.build_id`, the
//! test harness compares it with its own when a cluster starts.

use std::path::{Path, PathBuf};

/// The inputs of the extension's build, relative to the workspace root.
pub const INPUTS: [&str; 5] = [
    "crates/pg_jobs/src",
    "crates/pg_jobs/sql",
    "crates/pg_jobs/Cargo.toml",
    "crates/core/src",
    "Cargo.lock",
];

/// FNV-1a (64 bit) over every input file's path and contents, in path
/// order. Not cryptographic: it tells builds apart, it does not resist
/// anyone.
pub fn of_workspace(root: &Path) -> String {
    let mut files = Vec::new();
    for input in INPUTS {
        collect(&root.join(input), &mut files);
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for f in &files {
        eat(f.strip_prefix(root).unwrap_or(f).to_string_lossy().as_bytes());
        eat(&std::fs::read(f).unwrap_or_default());
    }
    format!("{h:016x}")
}

/// For a build script: rerun when an input changes, and set
/// `PG_JOBS_BUILD_ID` for the crate being built. `manifest_dir` is the
/// crate's directory (`CARGO_MANIFEST_DIR`, read when the script runs),
/// `to_root` the way from it to the workspace root (`"../.."`).
///
/// The paths to watch are given to cargo relative to the crate, as cargo
/// then resolves them in the checkout being built: cargo shares a build
/// script's output between checkouts (git worktrees) that use one target
/// directory, and absolute paths would make it watch, and fingerprint,
/// the checkout that ran the script first.
///
/// Panics if the workspace holds none of the inputs: a fingerprint of
/// nothing would be the same for every build, and match any other.
pub fn emit_cargo_directives(manifest_dir: &Path, to_root: &str) {
    let root = manifest_dir.join(to_root);
    for input in INPUTS {
        println!("cargo:rerun-if-changed={to_root}/{input}");
    }
    assert!(
        INPUTS.iter().any(|input| root.join(input).exists()),
        "build_id: no sources of pg_jobs under {}",
        root.display()
    );
    println!("cargo:rustc-env=PG_JOBS_BUILD_ID={}", of_workspace(&root));
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        if let Ok(entries) = std::fs::read_dir(p) {
            for e in entries.flatten() {
                collect(&e.path(), out);
            }
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_changes_the_id() {
        let dir = std::env::temp_dir().join(format!("pg_jobs_build_id_{}", std::process::id()));
        let src = dir.join("crates/pg_jobs/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("lib.rs"), "one").unwrap();
        let a = of_workspace(&dir);
        assert_eq!(a, of_workspace(&dir), "deterministic");
        std::fs::write(src.join("lib.rs"), "two").unwrap();
        let b = of_workspace(&dir);
        assert_ne!(a, b);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

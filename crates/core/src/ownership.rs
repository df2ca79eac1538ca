//! Ownership anchors: how a role's ownership of jobs and daemons is made
//! visible to PostgreSQL's own dependency tracking.
//!
//! PostgreSQL refuses `DROP ROLE` while a role owns objects, moves them with
//! `REASSIGN OWNED` and removes them with `DROP OWNED`, all through the
//! shared-dependency catalog `pg_shdepend`. Rows of pg_jobs' tables are not
//! objects PostgreSQL knows, and `pg_shdepend` entries naming pg_jobs'
//! tables make those statements fail with internal errors (they cannot
//! describe, drop or re-own such an object). So pg_jobs gives each role that
//! owns at least one job or daemon in a database one real, tiny object
//! there, owned by that role: an *anchor*, a shell type
//! `jobs."jobs of <role>"`. PostgreSQL records the anchor's owner as for any
//! object, so `DROP ROLE` is refused (listing the database) while it exists.
//!
//! A role has at most one anchor per database, and has one exactly while it
//! owns a job or daemon there. This module decides the name of an anchor
//! and, from what a role owns and the anchors it has, what to create, keep,
//! rename or drop; the extension applies it.

/// The longest identifier PostgreSQL keeps, in bytes (`NAMEDATALEN - 1`).
pub const MAX_NAME_BYTES: usize = 63;

/// What every anchor's name starts with.
pub const PREFIX: &[u8] = b"jobs of ";

/// The name of role `role`'s anchor, as bytes in the server's encoding:
/// `jobs of <role>`, and `jobs of <role> (<attempt>)` for attempts after the
/// first (when the plain name is taken by another type). A role name too long
/// to fit is cut where `clip(bytes, limit)` says (the longest prefix of
/// `bytes` of at most `limit` bytes that ends on a character boundary:
/// PostgreSQL's `pg_mbcliplen`), as PostgreSQL truncates identifiers.
pub fn anchor_name(role: &[u8], attempt: u32, clip: impl Fn(&[u8], usize) -> usize) -> Vec<u8> {
    let suffix = if attempt <= 1 {
        Vec::new()
    } else {
        format!(" ({attempt})").into_bytes()
    };
    let room = MAX_NAME_BYTES.saturating_sub(PREFIX.len() + suffix.len());
    let keep = if role.len() <= room {
        role.len()
    } else {
        clip(role, room).min(room)
    };
    let mut name = Vec::with_capacity(PREFIX.len() + keep + suffix.len());
    name.extend_from_slice(PREFIX);
    name.extend_from_slice(&role[..keep]);
    name.extend_from_slice(&suffix);
    name
}

/// An anchor a role has, as the catalog shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// It bears the role's current anchor name (`anchor_name(role, 1)`).
    pub named_for_role: bool,
    /// It depends (automatically) on the extension, so `DROP EXTENSION`
    /// takes it along. An anchor made by pg_jobs always does; one restored
    /// from a dump (`CREATE TYPE` by hand) does not until pg_jobs adopts it.
    pub tied: bool,
}

/// What to do with a role's anchors, by their index in the list given to
/// [`plan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Make a new anchor (the role owns something and has none).
    pub create: bool,
    /// The anchor that stays.
    pub keep: Option<usize>,
    /// Give the kept anchor the role's current name (it was made for the
    /// role under an older name, or for a role whose objects were
    /// reassigned to this one), if no other type has that name.
    pub rename_kept: bool,
    /// Tie the kept anchor to the extension.
    pub tie_kept: bool,
    /// Anchors to drop: all of them when the role owns nothing; the extra
    /// ones otherwise (`REASSIGN OWNED` hands the old role's anchor to a
    /// role that may have its own).
    pub drop: Vec<usize>,
}

/// What to do, given whether the role owns a job or daemon in the database
/// and the anchors it has there (in a stable order: the first of equals is
/// kept).
pub fn plan(owns: bool, anchors: &[Anchor]) -> Plan {
    if !owns {
        return Plan {
            drop: (0..anchors.len()).collect(),
            ..Plan::default()
        };
    }
    let Some(keep) = anchors
        .iter()
        .position(|a| a.named_for_role)
        .or((!anchors.is_empty()).then_some(0))
    else {
        return Plan {
            create: true,
            ..Plan::default()
        };
    };
    Plan {
        create: false,
        keep: Some(keep),
        rename_kept: !anchors[keep].named_for_role,
        tie_kept: !anchors[keep].tied,
        drop: (0..anchors.len()).filter(|&i| i != keep).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pg_mbcliplen` for UTF-8.
    fn utf8_clip(b: &[u8], limit: usize) -> usize {
        let s = std::str::from_utf8(b).unwrap();
        let mut n = limit.min(s.len());
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        n
    }

    fn name(role: &str, attempt: u32) -> String {
        String::from_utf8(anchor_name(role.as_bytes(), attempt, utf8_clip)).unwrap()
    }

    #[test]
    fn names_fit_an_identifier_and_cut_on_character_boundaries() {
        assert_eq!(name("alice", 1), "jobs of alice");
        assert_eq!(name("alice", 0), "jobs of alice");
        assert_eq!(name("alice", 2), "jobs of alice (2)");
        assert_eq!(name("", 1), "jobs of ");
        // The longest role name PostgreSQL keeps (63 bytes).
        let long = "r".repeat(63);
        let n = name(&long, 1);
        assert_eq!(n.len(), MAX_NAME_BYTES);
        assert_eq!(n, format!("jobs of {}", "r".repeat(55)));
        let n = name(&long, 12);
        assert_eq!(n.len(), MAX_NAME_BYTES);
        assert!(n.ends_with("r (12)"), "{n}");
        // Multibyte characters are never split.
        let wide = "é".repeat(31); // 62 bytes
        let n = name(&wide, 1);
        assert!(n.len() <= MAX_NAME_BYTES);
        assert_eq!(n, format!("jobs of {}", "é".repeat(27)));
        // A role name that fits is kept whole, whatever its characters.
        assert_eq!(name("Ünïcødé \"quoted\"", 1), "jobs of Ünïcødé \"quoted\"");
    }

    #[test]
    fn distinct_attempts_give_distinct_names() {
        let long = "x".repeat(63);
        let names: std::collections::HashSet<String> = (1..=100).map(|a| name(&long, a)).collect();
        assert_eq!(names.len(), 100);
        assert!(names.iter().all(|n| n.len() <= MAX_NAME_BYTES));
    }

    const NAMED: Anchor = Anchor {
        named_for_role: true,
        tied: true,
    };
    const OTHER: Anchor = Anchor {
        named_for_role: false,
        tied: true,
    };

    #[test]
    fn a_role_that_owns_nothing_keeps_no_anchor() {
        assert_eq!(plan(false, &[]), Plan::default());
        let p = plan(false, &[NAMED, OTHER]);
        assert_eq!(p.drop, vec![0, 1]);
        assert!(!p.create && p.keep.is_none());
    }

    #[test]
    fn a_role_that_owns_something_has_exactly_one() {
        let p = plan(true, &[]);
        assert!(p.create && p.keep.is_none() && p.drop.is_empty());

        // Already right: nothing to do.
        assert_eq!(
            plan(true, &[NAMED]),
            Plan {
                keep: Some(0),
                ..Plan::default()
            }
        );

        // After REASSIGN OWNED: its own anchor and the old role's. Its own
        // stays, wherever it is in the list.
        let p = plan(true, &[OTHER, NAMED]);
        assert_eq!(p.keep, Some(1));
        assert_eq!(p.drop, vec![0]);
        assert!(!p.rename_kept && !p.tie_kept && !p.create);

        // Only the old role's: it is kept and renamed for this role.
        let p = plan(true, &[OTHER]);
        assert_eq!(p.keep, Some(0));
        assert!(p.rename_kept && p.drop.is_empty());

        // Restored from a dump: adopted (tied to the extension).
        let restored = Anchor {
            named_for_role: true,
            tied: false,
        };
        let p = plan(true, &[restored]);
        assert!(p.tie_kept && !p.rename_kept && p.keep == Some(0));
    }
}

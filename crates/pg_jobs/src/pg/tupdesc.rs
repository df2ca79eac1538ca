//! Tuple descriptors, whose layout PostgreSQL 18 changed.
//!
//! Up to 17 a `TupleDescData` ends in the array of its attributes
//! (`attrs[]`). PostgreSQL 18 put an array of `CompactAttribute`s there
//! (`compact_attrs[]`) and the full `FormData_pg_attribute`s after it,
//! reachable only through `TupleDescAttr()`, an inline function in C. pgrx's
//! `PgTupleDesc` knows both layouts, so this module leaves the version to it
//! and needs no version gate of its own.

use pgrx::{pg_sys, PgTupleDesc};

/// The attribute `i` (0-based) of `desc`, as `TupleDescAttr(desc, i)`.
///
/// # Safety
///
/// `desc` is a valid tuple descriptor that outlives `'a`, and
/// `i < desc.natts`.
pub unsafe fn attribute<'a>(desc: pg_sys::TupleDesc, i: usize) -> &'a pg_sys::FormData_pg_attribute {
    // SAFETY: `desc` is valid (the caller's contract); the wrapper neither
    // copies nor releases it (dropping it does nothing), so the attribute
    // it points at lives as long as `desc`, for 'a; `i` is in range, which
    // `get` checks again.
    unsafe {
        let wrapper = PgTupleDesc::from_pg_unchecked(desc);
        let att: *const pg_sys::FormData_pg_attribute = wrapper.get(i).expect("attribute number in range");
        &*att
    }
}

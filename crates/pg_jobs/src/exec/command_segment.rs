//! A command handed from a scheduler to the worker that runs it (an
//! executor or a daemon), through a dynamic shared memory segment: commands
//! can be far longer than anything a registry slot or `bgw_extra` holds.
//! The segment holds the command and, after its NUL, the values of its
//! parameters (`args`), as `pg_jobs_core::params::segment` lays them out.

use pg_jobs_core::params::{segment, Command};
use pgrx::prelude::*;

pub const COMMAND_GONE: &str =
    "the command was no longer available: its scheduler exited before this worker started";

/// The dynamic shared memory segment holding a run's command, kept mapped
/// until the run's outcome is harvested (the executor may still be reading it).
pub struct Segment(*mut pg_sys::dsm_segment);

impl Segment {
    pub fn new(command: &Command) -> Segment {
        let bytes = segment::encode(command);
        // SAFETY: dsm_create returns a mapped segment of the requested size
        // (it raises an ERROR rather than return null without flags), so its
        // address has room for `bytes` (never empty: the command's NUL is
        // always there); the source is a Vec that cannot overlap fresh
        // shared memory. Pinning the mapping keeps it past the current
        // resource owner, until our Drop.
        unsafe {
            let seg = pg_sys::dsm_create(bytes.len(), 0);
            let addr = pg_sys::dsm_segment_address(seg) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr, bytes.len());
            pg_sys::dsm_pin_mapping(seg);
            Segment(seg)
        }
    }
    pub fn handle(&self) -> u32 {
        // SAFETY: self.0 is a segment we created and have not detached (only
        // Drop detaches it).
        unsafe { pg_sys::dsm_segment_handle(self.0) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: detaches the pinned mapping made in `new`, once; no
        // pointer into it survives (`new` only wrote through it).
        unsafe { pg_sys::dsm_detach(self.0) };
    }
}

/// Why a worker has no command to run.
#[derive(Debug)]
pub enum Unreadable {
    /// The segment is gone (its scheduler exited first).
    Gone,
    /// Its bytes are not a command and values (a bug, never expected).
    Broken(segment::DecodeError),
}

impl Unreadable {
    /// The SQLSTATE and message the run fails with.
    pub fn outcome(&self) -> (&'static str, String) {
        match self {
            Unreadable::Gone => ("55000", COMMAND_GONE.to_owned()),
            Unreadable::Broken(e) => (
                "XX000",
                format!("the command's shared memory segment is unreadable: {e}"),
            ),
        }
    }
}

/// Copy the command and its values out of the scheduler's dynamic shared
/// memory segment.
pub fn read_command(handle: u32) -> Result<Command, Unreadable> {
    // SAFETY: dsm_attach returns null (checked) or a mapped segment whose
    // address is valid for dsm_segment_map_length bytes; the bytes are
    // decoded into owned values before the segment is detached, and nothing
    // borrows them after. The scheduler wrote them completely before it
    // started this worker or handed the run over.
    unsafe {
        let seg = pg_sys::dsm_attach(handle);
        if seg.is_null() {
            return Err(Unreadable::Gone);
        }
        let len = pg_sys::dsm_segment_map_length(seg);
        let bytes = std::slice::from_raw_parts(pg_sys::dsm_segment_address(seg) as *const u8, len);
        let command = segment::decode(bytes).map_err(Unreadable::Broken);
        pg_sys::dsm_detach(seg);
        command
    }
}

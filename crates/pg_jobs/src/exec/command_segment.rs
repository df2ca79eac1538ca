//! A command handed from a scheduler to the worker that runs it (an
//! executor or a daemon), through a dynamic shared memory segment: commands
//! can be far longer than anything a registry slot or `bgw_extra` holds.

use pgrx::prelude::*;

pub const COMMAND_GONE: &str =
    "the command was no longer available: its scheduler exited before this worker started";

/// The dynamic shared memory segment holding a run's command, kept mapped
/// until the run's outcome is harvested (the executor may still be reading it).
pub struct Segment(*mut pg_sys::dsm_segment);

impl Segment {
    pub fn new(command: &str) -> Segment {
        // SAFETY: dsm_create returns a mapped segment of the requested size
        // (it raises an ERROR rather than return null without flags), so its
        // address has room for the command and its NUL; the source is a
        // &str that cannot overlap fresh shared memory. Pinning the mapping
        // keeps it past the current resource owner, until our Drop.
        unsafe {
            let bytes = command.as_bytes();
            let seg = pg_sys::dsm_create(bytes.len() + 1, 0);
            let addr = pg_sys::dsm_segment_address(seg) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr, bytes.len());
            *addr.add(bytes.len()) = 0;
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

/// Copy the command out of the scheduler's dynamic shared memory segment.
/// `None` if the segment is gone (its scheduler exited first).
pub fn read_command(handle: u32) -> Option<String> {
    // SAFETY: dsm_attach returns null (checked) or a mapped segment whose
    // address is valid for dsm_segment_map_length bytes; the bytes are
    // copied into a String before the segment is detached, and nothing
    // borrows them after. The scheduler wrote them completely before it
    // started this worker.
    unsafe {
        let seg = pg_sys::dsm_attach(handle);
        if seg.is_null() {
            return None;
        }
        let len = pg_sys::dsm_segment_map_length(seg);
        let bytes = std::slice::from_raw_parts(pg_sys::dsm_segment_address(seg) as *const u8, len);
        let text = String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
        pg_sys::dsm_detach(seg);
        Some(text)
    }
}

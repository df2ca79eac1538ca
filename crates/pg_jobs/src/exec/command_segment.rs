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
        unsafe { pg_sys::dsm_segment_handle(self.0) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        unsafe { pg_sys::dsm_detach(self.0) };
    }
}

/// Copy the command out of the scheduler's dynamic shared memory segment.
/// `None` if the segment is gone (its scheduler exited first).
pub fn read_command(handle: u32) -> Option<String> {
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

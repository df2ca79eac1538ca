//! Capturing the rows of a run's last statement, for `jobs.result`.
//!
//! A `DestReceiver` (what PostgreSQL sends a portal's rows to) that turns
//! each row into a JSON object — column name to value, numbers, booleans and
//! json as themselves, everything else as its text output — and keeps them
//! until `pg_jobs.max_result_bytes` is reached; past that, it only notes that
//! the result was truncated.

use pgrx::prelude::*;
use std::fmt::Write;

/// Rows captured so far.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub rows: Vec<String>,
    pub bytes: usize,
    pub truncated: bool,
}

/// The receiver: PostgreSQL's struct first, so a `*mut DestReceiver` is a
/// `*mut Receiver`.
#[repr(C)]
struct Receiver {
    pub_: pg_sys::DestReceiver,
    desc: pg_sys::TupleDesc,
    cap: usize,
    out: *mut Captured,
}

thread_local! {
    /// What the current command's last statement returned.
    static CAPTURED: std::cell::RefCell<Captured> = std::cell::RefCell::new(Captured::default());
}

/// Forget what an earlier command returned.
pub fn reset() {
    CAPTURED.with(|c| *c.borrow_mut() = Captured::default());
}

/// What the last command returned (and forget it).
pub fn take() -> Captured {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// A copy of what the last command returned so far.
pub fn current() -> Captured {
    CAPTURED.with(|c| c.borrow().clone())
}

/// A receiver capturing into this backend's buffer, allocated in the
/// current memory context (it lives as long as the command's).
pub fn receiver(cap: usize) -> *mut pg_sys::DestReceiver {
    let out = CAPTURED.with(|c| c.as_ptr());
    // SAFETY: palloc0 returns zeroed memory of the requested size (or raises
    // an ERROR), aligned for any type, so every field of the `#[repr(C)]`
    // Receiver may be written through it; a zeroed DestReceiver is valid
    // with its callbacks filled in. `out` points into this thread's
    // CAPTURED, which lives as long as the process.
    unsafe {
        let r = pg_sys::palloc0(std::mem::size_of::<Receiver>()) as *mut Receiver;
        (*r).pub_.receiveSlot = Some(receive_slot);
        (*r).pub_.rStartup = Some(startup);
        (*r).pub_.rShutdown = Some(noop);
        (*r).pub_.rDestroy = Some(noop);
        (*r).pub_.mydest = pg_sys::CommandDest::DestNone;
        (*r).cap = cap;
        (*r).out = out;
        r as *mut pg_sys::DestReceiver
    }
}

/// `rStartup`: remember the rows' descriptor.
///
/// # Safety
///
/// Only the executor calls this, through the receiver [`receiver`] built,
/// so `this` is a `*mut Receiver`; `desc` is valid until `rShutdown`.
#[pg_guard]
unsafe extern "C-unwind" fn startup(this: *mut pg_sys::DestReceiver, _op: i32, desc: pg_sys::TupleDesc) {
    // SAFETY: `this` is the palloc'd Receiver `receiver` built (its
    // DestReceiver is the first field of a `#[repr(C)]` struct).
    unsafe { (*(this as *mut Receiver)).desc = desc };
}

/// `rShutdown` and `rDestroy`: nothing to do (the receiver lives in the
/// command's memory context, freed with it).
///
/// # Safety
///
/// None beyond being called as a DestReceiver callback; it touches nothing.
#[pg_guard]
unsafe extern "C-unwind" fn noop(_this: *mut pg_sys::DestReceiver) {}

fn json_string(s: &str, into: &mut String) {
    into.push('"');
    for c in s.chars() {
        match c {
            '"' => into.push_str("\\\""),
            '\\' => into.push_str("\\\\"),
            '\n' => into.push_str("\\n"),
            '\r' => into.push_str("\\r"),
            '\t' => into.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(into, "\\u{:04x}", c as u32);
            }
            c => into.push(c),
        }
    }
    into.push('"');
}

/// `receiveSlot`: turn one row into a JSON object and keep it, up to the cap.
///
/// # Safety
///
/// Only the executor calls this, through the receiver [`receiver`] built,
/// after `startup`: `this` is a `*mut Receiver` whose `desc` describes
/// `slot`, a valid slot holding the row.
#[pg_guard]
unsafe extern "C-unwind" fn receive_slot(
    slot: *mut pg_sys::TupleTableSlot,
    this: *mut pg_sys::DestReceiver,
) -> bool {
    // SAFETY: `this` is our Receiver (see above), used by nobody else during
    // the call. `r.out` points at this thread's CAPTURED: no RefCell borrow
    // of it is alive while a command runs (reset/take/current borrow it only
    // briefly, outside the executor's run of the portal).
    let (r, out) = unsafe {
        let r = &mut *(this as *mut Receiver);
        let out = &mut *r.out;
        (r, out)
    };
    if out.truncated {
        return true;
    }
    let desc = r.desc;
    // SAFETY: `desc` is the descriptor `startup` was given for these rows and
    // `slot` holds one of them (the callback's contract).
    let natts = unsafe { (*desc).natts };
    // slot_getallattrs (an inline function in C): deform only what is missing.
    // SAFETY: as above; afterwards tts_values/tts_isnull hold `natts` entries.
    unsafe {
        if ((*slot).tts_nvalid as i32) < natts {
            pg_sys::slot_getsomeattrs_int(slot, natts);
        }
    }
    let mut row = String::from("{");
    let mut first = true;
    for i in 0..natts as usize {
        // SAFETY: i < natts, and `desc` outlives this row.
        let att = unsafe { crate::pg::tupdesc::attribute(desc, i) };
        if att.attisdropped {
            continue;
        }
        if !first {
            row.push(',');
        }
        first = false;
        // SAFETY: a NameData is NUL-terminated within its 64 bytes.
        let name = unsafe { std::ffi::CStr::from_ptr(att.attname.data.as_ptr()) }.to_string_lossy();
        json_string(&name, &mut row);
        row.push(':');
        // SAFETY: i < natts = the deformed entries of tts_isnull.
        if unsafe { *(*slot).tts_isnull.add(i) } {
            row.push_str("null");
            continue;
        }
        let mut out_fn = pg_sys::InvalidOid;
        let mut varlena = false;
        // SAFETY: we are in the command's transaction (the portal is running),
        // as the syscache look-up and the output function need; the value is
        // the non-null, deformed datum i of a column of type `atttypid`, which
        // is what its output function takes. Its result is a palloc'd C
        // string, copied (to_string_lossy) before it is freed below; an
        // ERROR inside unwinds through pgrx's guards.
        let (text_ptr, text) = unsafe {
            pg_sys::getTypeOutputInfo(att.atttypid, &mut out_fn, &mut varlena);
            let text_ptr = pg_sys::OidOutputFunctionCall(out_fn, *(*slot).tts_values.add(i));
            (text_ptr, std::ffi::CStr::from_ptr(text_ptr).to_string_lossy())
        };
        let raw = match att.atttypid {
            pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID | pg_sys::OIDOID => true,
            pg_sys::FLOAT4OID | pg_sys::FLOAT8OID | pg_sys::NUMERICOID => {
                !matches!(&*text, "NaN" | "Infinity" | "-Infinity")
            }
            pg_sys::JSONOID | pg_sys::JSONBOID => true,
            _ => false,
        };
        if att.atttypid == pg_sys::BOOLOID {
            row.push_str(if &*text == "t" { "true" } else { "false" });
        } else if raw {
            row.push_str(&text);
        } else {
            json_string(&text, &mut row);
        }
        // `text` may borrow from `text_ptr`'s memory: end it before the free.
        drop(text);
        // SAFETY: text_ptr came from OidOutputFunctionCall (palloc'd), and
        // nothing refers to it any more.
        unsafe { pg_sys::pfree(text_ptr.cast()) };
    }
    row.push('}');
    if out.bytes + row.len() > r.cap {
        out.truncated = true;
    } else {
        out.bytes += row.len();
        out.rows.push(row);
    }
    true
}

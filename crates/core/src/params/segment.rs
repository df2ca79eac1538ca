//! The bytes of a command's dynamic shared memory segment: what a scheduler
//! writes for the executor (or daemon) it starts or hands a run to.
//!
//! ```text
//! segment := command 0x00 [section]
//! section := 0x00                          no values (also: nothing at all)
//!          | 0x01 count:u32le value*count  the values of $1 … $count
//! value   := 0x00                          SQL NULL
//!          | 0x01 len:u32le byte*len       text (UTF-8)
//! then, for a run of a named queue (0.4.0):
//! queue   := 0x02 id:i64le len:u32le byte*len rate
//! rate    := 0x00                          no rate limit
//!          | 0x01 limit:u32le period_us:i64le
//! ```
//!
//! The command comes first and ends at its NUL, as it did before values
//! existed: a reader that knows nothing of values reads the command alone,
//! and a segment that ends right after the NUL, or whose tail is zeroed
//! (a mapping longer than what was written), has no values. A command
//! cannot hold a NUL byte (PostgreSQL's text cannot, and `jobs.submit`
//! refuses one), so the first NUL always ends it; [`encode`] cuts a
//! command at a NUL all the same, as the reader would.

use super::Command;
use crate::queue::{QueueTag, Rate};
use std::fmt;

const NO_VALUES: u8 = 0;
const VALUES: u8 = 1;
const NULL: u8 = 0;
const TEXT: u8 = 1;
const QUEUE: u8 = 2;
const NO_RATE: u8 = 0;
const RATE: u8 = 1;

/// The segment's bytes for `command`.
pub fn encode(command: &Command) -> Vec<u8> {
    let sql = command.sql.as_bytes();
    let sql = sql.split(|b| *b == 0).next().unwrap_or_default();
    let values: usize = command
        .args
        .iter()
        .flatten()
        .map(|v| 1 + v.as_ref().map_or(0, |t| 4 + t.len()))
        .sum();
    let mut out = Vec::with_capacity(sql.len() + 2 + 4 + values);
    out.extend_from_slice(sql);
    out.push(0);
    match &command.args {
        None => out.push(NO_VALUES),
        Some(args) => {
            out.push(VALUES);
            out.extend_from_slice(&len32(args.len()).to_le_bytes());
            for value in args {
                match value {
                    None => out.push(NULL),
                    Some(text) => {
                        out.push(TEXT);
                        out.extend_from_slice(&len32(text.len()).to_le_bytes());
                        out.extend_from_slice(text.as_bytes());
                    }
                }
            }
        }
    }
    if let Some(q) = &command.queue {
        out.push(QUEUE);
        out.extend_from_slice(&q.id.to_le_bytes());
        out.extend_from_slice(&len32(q.name.len()).to_le_bytes());
        out.extend_from_slice(q.name.as_bytes());
        match q.rate {
            None => out.push(NO_RATE),
            Some(r) => {
                out.push(RATE);
                out.extend_from_slice(&r.limit.to_le_bytes());
                out.extend_from_slice(&r.period_us.to_le_bytes());
            }
        }
    }
    out
}

/// A length as the segment stores it. Values are bounded far below 4 GiB
/// ([`super::MAX_ARGS_BYTES`], [`super::MAX_ARGS`]) before they get here.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Why a segment's bytes are not a command and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// There is no NUL after the command.
    Unterminated,
    /// The section or a value has a marker byte that is none of the above.
    BadMarker { at: usize, byte: u8 },
    /// The bytes end in the middle of the section.
    Truncated { at: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Unterminated => write!(f, "the command has no terminating NUL"),
            DecodeError::BadMarker { at, byte } => write!(f, "unexpected byte {byte:#04x} at offset {at}"),
            DecodeError::Truncated { at } => write!(f, "the values end early, at offset {at}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A reader over the bytes after the command's NUL.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(DecodeError::Truncated { at: self.at })?;
        self.at += 1;
        Ok(b)
    }
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(DecodeError::Truncated { at: self.at })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn len(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }
    /// The queue section, if the bytes go on with one (zeroes or the end:
    /// none).
    fn queue(&mut self) -> Result<Option<QueueTag>, DecodeError> {
        let at = self.at;
        match self.bytes.get(at) {
            None | Some(0) => return Ok(None),
            Some(&QUEUE) => self.at += 1,
            Some(&byte) => return Err(DecodeError::BadMarker { at, byte }),
        }
        let id = self.i64()?;
        let len = self.len()?;
        let name = String::from_utf8_lossy(self.take(len)?).into_owned();
        let at = self.at;
        let rate = match self.byte()? {
            NO_RATE => None,
            RATE => {
                let limit = self.len()? as u32;
                let period_us = self.i64()?;
                Some(Rate { limit, period_us })
            }
            byte => return Err(DecodeError::BadMarker { at, byte }),
        };
        Ok(Some(QueueTag { id, name, rate }))
    }
}

/// The command and values in a segment's `bytes` (text that is not UTF-8
/// is read with replacement characters, as the command always was).
pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
    let nul = bytes
        .iter()
        .position(|b| *b == 0)
        .ok_or(DecodeError::Unterminated)?;
    let sql = String::from_utf8_lossy(&bytes[..nul]).into_owned();
    let mut r = Reader { bytes, at: nul + 1 };
    let marker = match bytes.get(r.at) {
        None => NO_VALUES,
        Some(_) => r.byte()?,
    };
    let args = match marker {
        NO_VALUES => None,
        VALUES => {
            let n = r.len()?;
            // Each value takes at least a byte: a count the bytes cannot
            // hold is a broken segment, not a reason to allocate.
            if n > bytes.len() - r.at {
                return Err(DecodeError::Truncated { at: r.at });
            }
            let mut args = Vec::with_capacity(n);
            for _ in 0..n {
                let at = r.at;
                match r.byte()? {
                    NULL => args.push(None),
                    TEXT => {
                        let len = r.len()?;
                        args.push(Some(String::from_utf8_lossy(r.take(len)?).into_owned()));
                    }
                    byte => return Err(DecodeError::BadMarker { at, byte }),
                }
            }
            Some(args)
        }
        byte => return Err(DecodeError::BadMarker { at: nul + 1, byte }),
    };
    let queue = r.queue()?;
    Ok(Command { sql, args, queue })
}

/// Values from string slices, for tests.
#[cfg(test)]
fn args(values: &[Option<&str>]) -> Option<super::Args> {
    Some(values.iter().map(|v| v.map(str::to_owned)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_the_documented_one() {
        assert_eq!(encode(&Command::plain("SELECT 1")), b"SELECT 1\0\0");
        let c = Command {
            sql: "SELECT $1, $2".into(),
            args: args(&[Some("ab"), None]),
            queue: None,
        };
        assert_eq!(
            encode(&c),
            b"SELECT $1, $2\0\x01\x02\0\0\0\x01\x02\0\0\0ab\0".to_vec()
        );
        assert_eq!(decode(&encode(&c)), Ok(c));
    }

    #[test]
    fn a_command_alone_reads_as_before_values_existed() {
        // What 0.3.0 wrote (the command and its NUL), and a mapping whose
        // tail past what was written is zeroed.
        assert_eq!(decode(b"VACUUM\0"), Ok(Command::plain("VACUUM")));
        assert_eq!(decode(b"VACUUM\0\0\0\0\0"), Ok(Command::plain("VACUUM")));
        // A reader that knows nothing of values stops at the NUL.
        let bytes = encode(&Command {
            sql: "SELECT $1".into(),
            args: args(&[Some("x")]),
            queue: None,
        });
        assert_eq!(bytes.split(|b| *b == 0).next(), Some(&b"SELECT $1"[..]));
    }

    #[test]
    fn empty_values_and_empty_text_are_kept_apart() {
        for a in [
            args(&[]),
            args(&[Some("")]),
            args(&[None]),
            args(&[Some(""), None, Some("")]),
        ] {
            let c = Command {
                sql: "SELECT $1".into(),
                args: a,
                queue: None,
            };
            assert_eq!(decode(&encode(&c)), Ok(c));
        }
    }

    #[test]
    fn a_nul_in_the_command_ends_it() {
        let c = Command {
            sql: "SELECT 1\0; DROP TABLE t".into(),
            args: None,
            queue: None,
        };
        assert_eq!(decode(&encode(&c)), Ok(Command::plain("SELECT 1")));
    }

    #[test]
    fn broken_segments_are_errors_not_panics() {
        assert_eq!(decode(b"SELECT 1"), Err(DecodeError::Unterminated));
        assert_eq!(decode(b"x\0\x07"), Err(DecodeError::BadMarker { at: 2, byte: 7 }));
        assert_eq!(decode(b"x\0\x01\x01\0"), Err(DecodeError::Truncated { at: 3 }));
        // A count larger than the bytes could hold.
        assert_eq!(
            decode(b"x\0\x01\xff\xff\xff\xff\0"),
            Err(DecodeError::Truncated { at: 7 })
        );
        assert_eq!(
            decode(b"x\0\x01\x01\0\0\0\x05"),
            Err(DecodeError::BadMarker { at: 7, byte: 5 })
        );
        assert_eq!(
            decode(b"x\0\x01\x01\0\0\0\x01\x09\0\0\0abc"),
            Err(DecodeError::Truncated { at: 12 })
        );
    }

    fn command() -> impl Strategy<Value = Command> {
        (
            "[^\u{0}]{0,40}",
            proptest::option::of(proptest::collection::vec(
                proptest::option::of("[^\u{0}]{0,20}"),
                0..8,
            )),
            proptest::option::of((
                any::<i64>(),
                "[^\u{0}]{0,20}",
                proptest::option::of((any::<u32>(), any::<i64>())),
            )),
        )
            .prop_map(|(sql, args, queue)| Command {
                sql,
                args,
                queue: queue.map(|(id, name, rate)| QueueTag {
                    id,
                    name,
                    rate: rate.map(|(limit, period_us)| Rate { limit, period_us }),
                }),
            })
    }

    proptest! {
        /// Every command and its values come back as they were written,
        /// quotes, newlines, unicode and NULLs included.
        #[test]
        fn round_trip(c in command()) {
            prop_assert_eq!(decode(&encode(&c)), Ok(c));
        }

        /// Zeroed bytes after a segment (a longer mapping) change nothing.
        #[test]
        fn trailing_zeros_change_nothing(c in command(), pad in 0usize..16) {
            let mut bytes = encode(&c);
            bytes.extend(std::iter::repeat_n(0u8, pad));
            prop_assert_eq!(decode(&bytes), Ok(c));
        }

        /// Any bytes at all decode to a command or an error, never a panic;
        /// a cut-off segment with values never reads as complete.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn a_cut_segment_is_an_error(c in command(), cut in 1usize..64) {
            let bytes = encode(&c);
            let nul = bytes.iter().position(|b| *b == 0).unwrap();
            // Cut inside the values section (after its marker): an error.
            if c.args.is_some() && c.queue.is_none() && cut < bytes.len() - nul - 1 {
                prop_assert!(decode(&bytes[..bytes.len() - cut]).is_err());
            }
            // Cut inside the queue section (after its marker): an error.
            if c.queue.is_some() {
                let start = encode(&Command { queue: None, ..c.clone() }).len();
                if cut < bytes.len() - start - 1 {
                    prop_assert!(decode(&bytes[..bytes.len() - cut]).is_err());
                }
            }
        }
    }
}

//! PostgreSQL packs a five-character SQLSTATE into an int, six bits a
//! character (`MAKE_SQLSTATE` in `elog.h`). Runs store the text form.

/// Unpack a packed SQLSTATE (as in `ErrorData.sqlerrcode`) into its text.
pub fn unpack(code: i32) -> String {
    (0..5)
        .map(|i| char::from((((code >> (6 * i)) & 0x3F) as u8) + b'0'))
        .collect()
}

/// Pack a five-character SQLSTATE; `None` unless it is five of `0-9A-Z`.
pub fn pack(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || !bytes.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return None;
    }
    Some(bytes.iter().enumerate().fold(0i32, |acc, (i, b)| {
        acc | ((((*b - b'0') & 0x3F) as i32) << (6 * i))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes() {
        // ERRCODE_DIVISION_BY_ZERO and ERRCODE_QUERY_CANCELED as PostgreSQL packs them.
        assert_eq!(unpack(pack("22012").unwrap()), "22012");
        assert_eq!(pack("00000"), Some(0));
        assert_eq!(unpack(33816706), "22012");
        assert_eq!(pack("57014").map(unpack).as_deref(), Some("57014"));
        assert_eq!(pack("2201"), None);
        assert_eq!(pack("2201a"), None);
    }

    proptest! {
        #[test]
        fn pack_unpack_round_trip(s in "[0-9A-Z]{5}") {
            prop_assert_eq!(unpack(pack(&s).unwrap()), s);
        }
    }
}

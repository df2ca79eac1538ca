//! pg_cron's other form, `N seconds`, read as its `sscanf` reads it.

/// C's isspace in the C locale, which sscanf's blanks and `%u` skip.
pub(super) fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(c_isspace) {
        i += 1;
    }
    i
}

pub(super) const SECONDS_FORM: &str =
    "pg_cron's only interval is \"N seconds\" (or \"N second\") with a whole N from 1 to 59";

/// pg_cron's `sscanf(lower(text), " %u secon%c%c %c")`: `Ok(N)` when it
/// reads `N second` ending the text or `N seconds` followed only by
/// spaces, with N 1-59. `Err(Some(why))` when the text is meant as an
/// interval but refused; `Err(None)` when it is not one at all.
pub(super) fn seconds_interval(text: &str) -> Result<u32, Option<String>> {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let start = skip_space(b, 0);
    let digits = start + usize::from(matches!(b.get(start), Some(b'+' | b'-')));
    let mut end = digits;
    while b.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    let about_seconds = || lower.contains("second").then(|| SECONDS_FORM.to_owned());
    if end == digits {
        return Err(about_seconds());
    }
    let unit_at = skip_space(b, end);
    let unit = &lower[unit_at..];
    let Some(after) = unit.strip_prefix("second") else {
        // `5 minutes`, `5 sec`: an interval in a unit pg_cron lacks.
        let one_word = !unit.is_empty()
            && unit
                .trim_end_matches(|c: char| c.is_ascii() && c_isspace(c as u8))
                .bytes()
                .all(|b| b.is_ascii_alphabetic());
        return Err(if one_word {
            Some(SECONDS_FORM.to_owned())
        } else {
            about_seconds()
        });
    };
    let after_s = after.strip_prefix('s');
    let rest = after_s.map_or(after, |s| {
        s.trim_start_matches(|c: char| c.is_ascii() && c_isspace(c as u8))
    });
    if !rest.is_empty() {
        // The rest of the original text, in its own case.
        let at = text.len() - rest.len();
        let trailing = text.get(at..).unwrap_or(rest);
        let note = if after_s.is_none() && rest.bytes().all(c_isspace) {
            " (pg_cron allows them after \"seconds\" but not after \"second\")"
        } else {
            ""
        };
        return Err(Some(format!("trailing characters {trailing:?}{note}")));
    }
    // A minus sign makes sscanf's %u wrap to a huge number, and numbers
    // beyond 32 bits are undefined behaviour in C (glibc wraps them): both
    // are out of range here.
    let negative = b.get(start) == Some(&b'-');
    match lower[digits..end].parse::<u32>() {
        Ok(n) if !negative && (1..=59).contains(&n) => Ok(n),
        _ => Err(Some("seconds must be 1-59".to_owned())),
    }
}

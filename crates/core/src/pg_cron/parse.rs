//! Reading the text as pg_cron's cron reader does (Vixie cron's
//! `src/entry.c`, `src/misc.c`), one character at a time.

use super::entry::{bit_nset, runs, Entry, Field, Item, Spec, DOM, DOW, HOUR, MINUTE, MONTH};
use super::macros::parse_macro;
use super::seconds::c_isspace;

pub(super) enum Parsed {
    Reboot,
    Seconds(u32),
    Cron(Box<Entry>),
}

/// pg_cron copies the schedule into a 1000-byte buffer and refuses a cron
/// schedule that does not fit with its NUL.
pub(super) const BUFFER_LEN: usize = 1000;

/// pg_cron's reader: the text's bytes, then one NUL (`Some(0)`), then EOF
/// (`None`). Fields end at blanks, the NUL or a line break.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    pushed: Option<u8>,
}

impl Reader<'_> {
    fn next(&mut self) -> Option<u8> {
        if let Some(c) = self.pushed.take() {
            return Some(c);
        }
        let c = match self.text.get(self.at) {
            Some(&c) => c,
            None if self.at == self.text.len() => 0,
            None => return None,
        };
        self.at += 1;
        Some(c)
    }

    /// Where the character last read is (the text's length for the NUL).
    fn pos(&self) -> usize {
        self.at - 1
    }
}

fn is_blank(c: Option<u8>) -> bool {
    matches!(c, Some(b' ' | b'\t'))
}

fn found(c: Option<u8>) -> String {
    match c {
        None | Some(0) => "the end of the text".to_owned(),
        Some(b) if b.is_ascii() => format!("\"{}\"", char::from(b).escape_debug()),
        Some(_) => "a non-ASCII character".to_owned(),
    }
}

/// The message for an entry that ends after `n` fields (n < 5).
fn field_count(n: usize) -> String {
    const WORDS: [&str; 5] = ["no", "one", "two", "three", "four"];
    if n == 0 {
        return "the schedule is empty".to_owned();
    }
    format!(
        "{} field{}; pg_cron schedules have five (minute hour day-of-month month day-of-week)",
        WORDS.get(n).copied().unwrap_or("too few"),
        if n == 1 { "" } else { "s" }
    )
}

/// A number or name as pg_cron read it.
struct Number {
    text: String,
    /// Beyond a C int, pg_cron's atoi is undefined behaviour (glibc wraps
    /// it); such numbers are kept as i64::MAX, out of every range.
    value: i64,
}

enum NumberError {
    /// No letters or digits where a number should start.
    Missing(Option<u8>),
    /// Letters that are not one of the names.
    NotANumber(String),
}

pub(super) const DOLLAR_ALONE: &str =
    "day-of-month field: \"$\" (the last day of the month) must be the whole field";

/// Where a number is read, for messages.
#[derive(Clone, Copy)]
enum At {
    Item,
    RangeEnd,
    Step,
}

impl NumberError {
    fn describe(self, spec: &Spec, at: At) -> String {
        let field = spec.name;
        match (self, at) {
            (NumberError::Missing(Some(b'$')), At::Item) if spec.name == DOM.name => DOLLAR_ALONE.to_owned(),
            (NumberError::Missing(c), At::Item) => {
                format!("{field} field: expected {}, found {}", spec.expected, found(c))
            }
            (NumberError::Missing(c), At::RangeEnd) => {
                format!("{field} field: expected a number after \"-\", found {}", found(c))
            }
            (NumberError::Missing(c), At::Step) => {
                format!("{field} field: expected a step after \"/\", found {}", found(c))
            }
            (NumberError::NotANumber(t), At::Step) => {
                format!("{field} field: step \"{t}\" is not a number")
            }
            (NumberError::NotANumber(t), _) if spec.names.is_empty() => {
                format!("{field} field: \"{t}\" is not a number")
            }
            (NumberError::NotANumber(t), _) => {
                format!("{field} field: \"{t}\" is not a number or {}", spec.name_kind)
            }
        }
    }
}

/// A run of ASCII letters and digits: one of `names` in any case (its
/// index + `low`), or all digits. (pg_cron also stops at 1000 characters,
/// which a schedule that fits its buffer cannot reach.)
fn get_number(
    r: &mut Reader,
    names: &[&str],
    low: u32,
    mut c: Option<u8>,
) -> Result<(Option<u8>, Number), NumberError> {
    let mut text = String::new();
    while let Some(b) = c.filter(u8::is_ascii_alphanumeric) {
        text.push(char::from(b));
        c = r.next();
    }
    if text.is_empty() {
        return Err(NumberError::Missing(c));
    }
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(&text)) {
        let value = i as i64 + i64::from(low);
        return Ok((c, Number { text, value }));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value = text.parse::<i32>().map_or(i64::MAX, i64::from);
        return Ok((c, Number { text, value }));
    }
    Err(NumberError::NotANumber(text))
}

fn in_range(spec: &Spec, n: &Number) -> Result<u32, String> {
    match u32::try_from(n.value) {
        Ok(v) if (spec.low..=spec.high).contains(&v) => Ok(v),
        _ => Err(format!(
            "{} field: {} is out of range {}-{}",
            spec.name, n.text, spec.low, spec.high
        )),
    }
}

/// One item: `*`, `N`, `A-B`, each but `N` with an optional `/S`. Returns
/// the character after it.
fn get_range(
    r: &mut Reader,
    spec: &Spec,
    mut c: Option<u8>,
    field: &mut Field,
) -> Result<Option<u8>, String> {
    let name = spec.name;
    let bounds = if c == Some(b'*') {
        c = r.next();
        None
    } else {
        let (next, a) = get_number(r, spec.names, spec.low, c).map_err(|e| e.describe(spec, At::Item))?;
        c = next;
        if c != Some(b'-') {
            if c == Some(b'/') {
                return Err(format!(
                    "{name} field: a step needs * or a range before it (\"{0}/…\" is refused; \"{0}-{1}/…\" is the same from {0} on)",
                    a.text, spec.high
                ));
            }
            let v = in_range(spec, &a)?;
            field.items.push(Item::One(v));
            field.bits |= 1 << v;
            return Ok(c);
        }
        c = r.next();
        let (next, b) = get_number(r, spec.names, spec.low, c).map_err(|e| e.describe(spec, At::RangeEnd))?;
        c = next;
        Some((a, b))
    };
    let step = if c == Some(b'/') {
        c = r.next();
        let (next, s) = get_number(r, &[], 0, c).map_err(|e| e.describe(spec, At::Step))?;
        c = next;
        if s.value <= 0 {
            return Err(format!("{name} field: a step must be at least 1"));
        }
        Some(s)
    } else {
        None
    };
    let (lo, hi) = match &bounds {
        Some((a, b)) => (in_range(spec, a)?, in_range(spec, b)?),
        None => (spec.low, spec.high),
    };
    let step_value = match &step {
        Some(s) => match u32::try_from(s.value) {
            Ok(v) if v <= spec.high => v,
            _ => {
                return Err(format!(
                    "{name} field: step {} is larger than {}",
                    s.text, spec.high
                ))
            }
        },
        None => 1,
    };
    if let Some((a, b)) = &bounds {
        if lo > hi {
            return Err(backwards(spec, a, b, step.as_ref(), lo, hi));
        }
    }
    let set = (lo..=hi)
        .step_by(step_value as usize)
        .fold(0u64, |set, v| set | 1 << v);
    field.bits |= set;
    field.items.push(match bounds {
        None => Item::All { step: step_value },
        Some(_) => Item::Range {
            lo,
            hi,
            step: step_value,
        },
    });
    Ok(c)
}

/// The refusal of a backwards range `a-b` (`lo` > `hi`), with what pg_cron
/// would select for it: nothing with a step; without one, what its
/// byte-wise bit setter sets (see [`bit_nset`]).
fn backwards(spec: &Spec, a: &Number, b: &Number, step: Option<&Number>, lo: u32, hi: u32) -> String {
    let written = match step {
        Some(s) => format!("{}-{}/{}", a.text, b.text, s.text),
        None => format!("{}-{}", a.text, b.text),
    };
    let selected = match step {
        Some(_) => None,
        None => runs(
            (bit_nset(lo - spec.low, hi - spec.low) << spec.low) & spec.all(),
            spec,
        ),
    };
    let pg_cron = match selected {
        Some(values) => format!("pg_cron would read it as {values}"),
        None => "pg_cron would select nothing for it".to_owned(),
    };
    // `Mon-Sun` is the usual one: Sunday is 0, but 7 too.
    let sunday = if spec.name == DOW.name && hi == 0 {
        "; Sunday is also 7, which can end a range"
    } else {
        ""
    };
    format!(
        "{} field: range {written} runs backwards ({pg_cron}{sunday})",
        spec.name
    )
}

/// Characters that may continue a field (pg_cron's items, and forms of
/// other crons it does not know, such as `#2`, `L`, `?`): after the fifth
/// field's last item, anything else is text after the five fields.
pub(super) fn field_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"*/,-?#$.".contains(&b)
}

/// A comma-separated list of items, then the blanks after it. Returns the
/// first character of the next field. pg_cron ignores what follows the
/// last item up to the next blank; it is refused here (`index` 0-4 is the
/// field's place, and `text` the whole schedule, for messages).
fn get_list(
    r: &mut Reader,
    spec: &Spec,
    mut c: Option<u8>,
    index: usize,
    text: &str,
) -> Result<(Option<u8>, Field), String> {
    if matches!(c, None | Some(0)) {
        return Err(field_count(index));
    }
    let mut field = Field {
        star: c == Some(b'*'),
        ..Field::default()
    };
    let mut item_at;
    loop {
        item_at = r.pos();
        c = get_range(r, spec, c, &mut field)?;
        if c != Some(b',') {
            break;
        }
        c = r.next();
    }
    let junk_at = r.pos();
    while !matches!(c, None | Some(b' ' | b'\t' | b'\n' | 0)) {
        c = r.next();
    }
    let junk = &text[junk_at..r.pos().min(text.len())];
    // White space (a `\r` before a line break) is not text.
    if !junk.bytes().all(c_isspace) {
        let first = junk.as_bytes()[0];
        if index == 4 && !field_char(first) {
            return Err(trailing(&text[junk_at..]));
        }
        if first == b'$' && spec.name == DOM.name {
            return Err(DOLLAR_ALONE.to_owned());
        }
        return Err(format!(
            "{} field: unexpected {junk:?} after {:?}",
            spec.name,
            &text[item_at..junk_at]
        ));
    }
    while is_blank(c) {
        c = r.next();
    }
    Ok((c, field))
}

/// The message for text after the five fields (`rest`, not blank).
fn trailing(rest: &str) -> String {
    format!(
        "trailing characters {:?} after the five fields",
        trim_c_space(rest)
    )
}

pub(super) fn trim_c_space(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii() && c_isspace(c as u8))
}

/// Whether a token after the fifth field looks like one more field: made
/// of digits, `*`, `/`, `,`, `-`, `?`, `#`, `L` and month or day names, with
/// at least one digit, `*`, `?`, `L` or name.
fn looks_like_field(token: &str) -> bool {
    let mut something = false;
    for part in token.split(|c: char| !c.is_ascii_alphabetic()) {
        if part.is_empty() {
            continue;
        }
        let name = |n: &&str| n.eq_ignore_ascii_case(part);
        if !(part.eq_ignore_ascii_case("L") || MONTH.names.iter().any(name) || DOW.names.iter().any(name)) {
            return false;
        }
        something = true;
    }
    token
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b"0123456789*/,-?#".contains(&b))
        && (something
            || token
                .bytes()
                .any(|b| b.is_ascii_digit() || b == b'*' || b == b'?'))
}

/// The text after the fifth field (from its first non-blank character):
/// pg_cron ignores it, and it is refused here unless it is white space.
/// Only tokens on the entry's line can be more fields.
fn after_five(rest: &str) -> Result<(), String> {
    let line = rest.split('\n').next().unwrap_or_default();
    let rest = trim_c_space(rest);
    if rest.is_empty() {
        return Ok(());
    }
    let more = line
        .split(|c: char| c.is_ascii() && c_isspace(c as u8))
        .filter(|t| !t.is_empty())
        .take_while(|t| looks_like_field(t))
        .count();
    if more == 0 {
        return Err(trailing(rest));
    }
    const WORDS: [&str; 5] = ["six", "seven", "eight", "nine", "ten"];
    let count = WORDS
        .get(more - 1)
        .map_or_else(|| format!("{} fields", 5 + more), |w| format!("{w} fields"));
    Err(format!(
        "{count}; pg_cron's schedules have five (minute hour day-of-month month day-of-week), and a sixth is refused rather than ignored"
    ))
}

/// Why [`parse_cron`] refuses a text.
pub(super) struct CronRefusal {
    pub(super) problem: String,
    /// The five fields or the macro were read; text follows them.
    pub(super) after_entry: bool,
}

impl From<String> for CronRefusal {
    fn from(problem: String) -> CronRefusal {
        CronRefusal {
            problem,
            after_entry: false,
        }
    }
}

pub(super) fn after_entry(problem: String) -> CronRefusal {
    CronRefusal {
        problem,
        after_entry: true,
    }
}

/// pg_cron's cron reader; `Err` says why it (or pg_jobs) refuses the text.
pub(super) fn parse_cron(text: &str) -> Result<Parsed, CronRefusal> {
    if text.len() >= BUFFER_LEN {
        return Err(CronRefusal::from(format!(
            "it is {} bytes long, and pg_cron reads cron schedules of at most {} bytes",
            text.len(),
            BUFFER_LEN - 1
        )));
    }
    let mut r = Reader {
        text: text.as_bytes(),
        at: 0,
        pushed: None,
    };
    // Skip blank lines and `#` comment lines, and blanks before the entry.
    let mut c;
    loop {
        c = r.next();
        while is_blank(c) {
            c = r.next();
        }
        if c.is_none() || !matches!(c, Some(b'\n' | b'#')) {
            break;
        }
        while !matches!(c, None | Some(b'\n')) {
            c = r.next();
        }
    }
    r.pushed = c;
    let c = r.next();
    if c.is_none() {
        return Err(CronRefusal::from(
            "it has only blank and comment lines".to_owned(),
        ));
    }
    if c == Some(b'@') {
        return parse_macro(&text[r.pos() + 1..]);
    }
    let (c, minute) = get_list(&mut r, &MINUTE, c, 0, text)?;
    let (c, hour) = get_list(&mut r, &HOUR, c, 1, text)?;
    let (c, dom, dom_last) = if c == Some(b'$') {
        let mut c = r.next();
        if c == Some(0) {
            return Err(field_count(3).into());
        }
        if !is_blank(c) {
            return Err(DOLLAR_ALONE.to_owned().into());
        }
        while is_blank(c) {
            c = r.next();
        }
        (c, Field::default(), true)
    } else {
        let (c, dom) = get_list(&mut r, &DOM, c, 2, text)?;
        (c, dom, false)
    };
    let (c, month) = get_list(&mut r, &MONTH, c, 3, text)?;
    let (c, dow) = get_list(&mut r, &DOW, c, 4, text).map_err(|problem| CronRefusal {
        after_entry: problem.starts_with("trailing characters"),
        problem,
    })?;
    // pg_cron ignores what follows, as Vixie cron's command; refused here.
    if !matches!(c, None | Some(0)) {
        after_five(&text[r.pos()..]).map_err(after_entry)?;
    }
    Ok(Parsed::Cron(Box::new(Entry {
        fields: [minute, hour, dom, month, dow],
        dom_last,
        word: None,
    })))
}

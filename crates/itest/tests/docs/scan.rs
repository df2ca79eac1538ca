//! Reading the extension's source without compiling it: Rust with its
//! comments and literals masked, `#[pg_extern]` functions, SQL statements
//! and `COMMENT` texts.

use super::*;

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Files under `dir` (recursively) whose name ends in `.ext`, sorted.
pub(crate) fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
        for entry in entries {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier that starts at byte `i` of `s` after any whitespace (possibly empty).
pub(crate) fn ident_after_ws(s: &str, i: usize) -> &str {
    let ws = s[i..].len() - s[i..].trim_start().len();
    ident_at(s, i + ws)
}

/// The identifier starting at byte `i` of `s` (possibly empty).
pub(crate) fn ident_at(s: &str, i: usize) -> &str {
    let end = s[i..]
        .bytes()
        .position(|b| !is_ident(b))
        .map_or(s.len(), |n| i + n);
    &s[i..end]
}

/// Every `<prefix><name>` in `text` where `<prefix>` is not glued to a
/// preceding identifier (so `jobs.` does not match inside `pg_jobs.`).
/// Returns the names, with what follows each (for `jobs.run.owner`: `run`
/// and `.owner`).
pub(crate) fn qualified<'a>(text: &'a str, prefix: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix).map(|n| from + n) {
        from = at + prefix.len();
        if at > 0 && is_ident(text.as_bytes()[at - 1]) {
            continue;
        }
        let name = ident_at(text, from);
        if !name.is_empty() {
            out.push((name, &text[from + name.len()..]));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Rust sources: mask comments and literals, then find `#[pg_extern]` items.

/// `src` with every comment and every string, byte-string, C-string, raw
/// string and char literal replaced by spaces, byte for byte (so offsets
/// into the result are offsets into `src`).
pub(crate) fn mask_rust(src: &str) -> Vec<u8> {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for x in &mut out[from..to.min(b.len())] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let glued = i > 0 && is_ident(b[i - 1]);
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            // r"…", r#"…"#, and with a b or c prefix.
            b'r' if (!glued || (matches!(b[i - 1], b'b' | b'c') && (i < 2 || !is_ident(b[i - 2]))))
                && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let body = i + 2 + hashes;
                let end = b[body..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(b.len(), |n| body + n + close.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i, j + 1);
                i = j + 1;
            }
            // A char literal ('x', '\n', '\u{..}', 'é'), or a lifetime or label.
            b'\'' => {
                let end = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 3..].iter().position(|&c| c == b'\'').map(|n| i + 3 + n + 1)
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 2 + ch_len)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i, end);
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The index just past the bracket that closes the one at `open`
/// (`(`/`[`/`{`), in masked source.
pub(crate) fn close_of(m: &[u8], open: usize) -> usize {
    let (o, c) = match m[open] {
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        _ => (b'{', b'}'),
    };
    let mut depth = 0usize;
    for (j, &x) in m.iter().enumerate().skip(open) {
        if x == o {
            depth += 1;
        } else if x == c {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    m.len()
}

/// The first `keyword` in `m` at or after `from` that stands alone (not
/// part of a longer identifier).
pub(crate) fn keyword(m: &[u8], from: usize, keyword: &str) -> Option<usize> {
    let k = keyword.as_bytes();
    (from..m.len().saturating_sub(k.len() - 1)).find(|&j| {
        &m[j..j + k.len()] == k
            && (j == 0 || !is_ident(m[j - 1]))
            && m.get(j + k.len()).is_none_or(|&c| !is_ident(c))
    })
}

/// `key = "value"` inside an attribute's original text.
pub(crate) fn attr_string(attr: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = attr[from..].find(key).map(|n| from + n) {
        from = at + key.len();
        let glued_before = at > 0 && is_ident(attr.as_bytes()[at - 1]);
        let glued_after = attr[from..].bytes().next().is_some_and(is_ident);
        if glued_before || glued_after {
            continue;
        }
        if let Some(rest) = attr[from..].trim_start().strip_prefix('=') {
            let rest = rest.trim_start().strip_prefix('"')?;
            return rest.find('"').map(|end| rest[..end].to_owned());
        }
    }
    None
}

/// The SQL schema of each `#[pg_extern]` function in one Rust file, by SQL
/// name (not those with `sql = false`, for which pgrx makes no SQL).
pub(crate) fn pg_externs(src: &str, default_schema: &str) -> Vec<(String, String)> {
    let m = mask_rust(src);
    let text = String::from_utf8_lossy(&m).into_owned();
    // `#[pg_schema] mod x { … }`: the byte range of its body, and its name.
    let mut modules: Vec<(usize, usize, String)> = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("#[pg_schema]").map(|n| from + n) {
        from = at + 1;
        let Some(kw) = keyword(&m, at, "mod") else { break };
        let name = ident_after_ws(&text, kw + 3);
        if let Some(open) = text[kw..].find(['{', ';']).map(|n| kw + n) {
            if m[open] == b'{' {
                modules.push((open, close_of(&m, open), name.to_owned()));
            }
        }
    }
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("#[pg_extern").map(|n| from + n) {
        from = at + 1;
        if text[at + "#[pg_extern".len()..]
            .bytes()
            .next()
            .is_some_and(is_ident)
        {
            continue;
        }
        let attr_end = close_of(&m, at + 1);
        let attr = &src[at..attr_end];
        // `sql = false`: pgrx makes no SQL for it; SQL of our own creates it
        // (and is scanned as SQL, if it is pg_jobs').
        if attr.split_whitespace().collect::<String>().contains("sql=false") {
            continue;
        }
        let Some(f) = keyword(&m, attr_end, "fn") else {
            continue;
        };
        let rust_name = ident_after_ws(&text, f + 2);
        let name = attr_string(attr, "name").unwrap_or_else(|| rust_name.to_owned());
        let schema = attr_string(attr, "schema").unwrap_or_else(|| {
            modules
                .iter()
                .filter(|(s, e, _)| *s < at && at < *e)
                .max_by_key(|(s, _, _)| *s)
                .map_or_else(|| default_schema.to_owned(), |(_, _, n)| n.clone())
        });
        out.push((schema, name));
    }
    out
}

// ---------------------------------------------------------------------------
// SQL: statements that create and comment objects of schema `jobs`.

/// `sql` without `--` line comments and `/* */` block comments. A
/// `'…'` literal is kept as it is (a `--` in a COMMENT's text is text).
pub(crate) fn strip_sql_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while !rest.is_empty() {
        if rest.starts_with('\'') {
            // Up to the closing quote; a doubled '' is part of the literal.
            let len = rest[1..].find('\'').map_or(rest.len(), |n| n + 2);
            out.push_str(&rest[..len]);
            rest = &rest[len..];
        } else if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |n| &r[n..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |n| &r[n + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// For each statement form such as `COMMENT ON FUNCTION` or `CREATE VIEW`
/// (words separated by single spaces, any case), the `jobs.` object it
/// names, with what follows the name. `text` is SQL with its comments
/// stripped, or Rust with its line comments stripped.
pub(crate) fn statements<'a>(text: &'a str, forms: &[&str]) -> Vec<(String, &'a str, &'a str)> {
    statements_in(text, forms, "jobs")
}

/// [`statements`] naming objects of schema `schema`.
pub(crate) fn statements_in<'a>(
    text: &'a str,
    forms: &[&str],
    schema: &str,
) -> Vec<(String, &'a str, &'a str)> {
    let prefix = format!("{schema}.");
    let upper = text.to_ascii_uppercase();
    let mut out = Vec::new();
    for form in forms {
        let words: Vec<&str> = form.split(' ').collect();
        let mut from = 0;
        while let Some(at) = upper[from..].find(words[0]).map(|n| from + n) {
            from = at + words[0].len();
            if at > 0 && is_ident(upper.as_bytes()[at - 1]) {
                continue;
            }
            // The remaining words, each after some whitespace.
            let mut pos = from;
            let matched = words[1..].iter().all(|w| {
                let ws = upper[pos..].len() - upper[pos..].trim_start().len();
                if ws > 0 && upper[pos + ws..].starts_with(w) {
                    pos += ws + w.len();
                    true
                } else {
                    false
                }
            });
            if !matched {
                continue;
            }
            let mut rest = text[pos..].trim_start();
            if rest.to_ascii_uppercase().starts_with("IF NOT EXISTS") {
                rest = rest["IF NOT EXISTS".len()..].trim_start();
            }
            if let Some(after) = rest.strip_prefix(prefix.as_str()) {
                let name = ident_at(after, 0);
                out.push((form.to_string(), &after[..name.len()], &after[name.len()..]));
            }
        }
    }
    out
}

/// The text of a COMMENT, from what follows the object's name in `COMMENT
/// ON … jobs.<name>…` (a function's argument list, a column's `.column`)
/// through `IS '…'`: `''` read as `'`, adjacent literals on separate lines
/// joined (as SQL does), whitespace normalised.
pub(crate) fn comment_text(rest: &str) -> Result<String, String> {
    let mut s = rest;
    if s.starts_with('(') {
        let mut depth = 0usize;
        let close = s
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .ok_or("unclosed argument list")?
            .0;
        s = &s[close + 1..];
    } else if let Some(r) = s.strip_prefix('.') {
        s = &r[ident_at(r, 0).len()..];
    }
    s = s.trim_start();
    let glued = s.as_bytes().get(2).is_some_and(|&b| is_ident(b));
    if !s.get(..2).is_some_and(|k| k.eq_ignore_ascii_case("IS")) || glued {
        return Err(format!("no IS after the name: {:?}", first_line(s)));
    }
    s = s[2..].trim_start();
    if !s.starts_with('\'') {
        return Err(format!(
            "the comment is not a plain '…' literal (IS NULL, E'…' and $$…$$ are not read): {:?}",
            first_line(s)
        ));
    }
    let mut text = String::new();
    while let Some(body) = s.strip_prefix('\'') {
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '\'')) if body[i + 1..].starts_with('\'') => {
                    text.push('\'');
                    chars.next();
                }
                Some((i, '\'')) => break i + 1,
                Some((_, c)) => text.push(c),
                None => return Err("unterminated literal".into()),
            }
        };
        let after = &body[end..];
        let gap = &after[..after.len() - after.trim_start().len()];
        if !gap.contains('\n') || !after.trim_start().starts_with('\'') {
            break;
        }
        s = after.trim_start();
    }
    Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

// ---------------------------------------------------------------------------

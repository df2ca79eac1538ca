//! Binding a command's `$1 … $n` to the text values of its `args`, as the
//! extended query protocol binds untyped text parameters
//! (`exec_parse_message` and `exec_bind_message` in PostgreSQL's
//! `postgres.c`): the statement is parse-analysed with variable parameter
//! types, so its own casts and context decide each type; a type left
//! undecided is PostgreSQL's 42P18; then each value is read by its type's
//! input function (a NULL element is SQL NULL, still shown to the input
//! function so a domain's NOT NULL holds).
//!
//! The rules that need no PostgreSQL (one statement, equal counts, the
//! messages) are `pg_jobs_core::params`'; this is the part that does.

use crate::pg::error::raise;
use pg_jobs_core::params::{self, ArgsError};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::ffi::{CStr, CString};

/// Raise `e` as an ERROR with its SQLSTATE and hint.
pub(crate) fn raise_args_error(e: &ArgsError) -> ! {
    raise(code_of(e.sqlstate()), e.to_string(), e.hint())
}

/// The `PgSqlErrorCode` of a five-character SQLSTATE.
fn code_of(sqlstate: &str) -> PgSqlErrorCode {
    pg_jobs_core::sqlstate::pack(sqlstate)
        .map_or(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, PgSqlErrorCode::from)
}

/// The highest `$n` in `command`'s text, found by PostgreSQL's own lexer
/// (so a `$1` inside a string, a dollar-quoted body, a comment or a quoted
/// identifier is no parameter, exactly as the parser sees it); 0 if none.
/// For a command already parsed successfully: the lexer then raises
/// nothing.
pub(crate) fn highest_parameter(command: &CStr) -> usize {
    let text = command.to_bytes();
    let mut highest = 0usize;
    let mut storage = pg_sys::core_yy_extra_type::default();
    // The scanner keeps this pointer: every access below goes through it.
    let extra: *mut pg_sys::core_yy_extra_type = &mut storage;
    // SAFETY: scanner_init, core_yylex and scanner_finish are the core
    // lexer's interface, used as pg_stat_statements uses it: `extra`
    // (`storage`, not touched otherwise) and the keyword tables outlive
    // the scanner (the tables are the backend's
    // static ScanKeywords and ScanKeywordTokens, read through their
    // addresses as scanner_init takes them); the scanner works on a copy
    // of `command` made in the current memory context, and `loc` is a byte
    // offset into that same text, checked against its length before use.
    // Only a PARAM token starts with '$' and a digit (a dollar quote's tag
    // cannot start with a digit, an identifier cannot start with '$'), and
    // for PARAM the lexer sets `ival` to the parameter's number.
    unsafe {
        let scanner = pg_sys::scanner_init(
            command.as_ptr(),
            extra,
            &raw const pg_sys::ScanKeywords,
            (&raw const pg_sys::ScanKeywordTokens).cast(),
        );
        // The command was parsed already: its warnings were given then.
        (*extra).escape_string_warning = false;
        loop {
            let mut value = pg_sys::core_YYSTYPE::default();
            let mut loc: std::ffi::c_int = 0;
            if pg_sys::core_yylex(&mut value, &mut loc, scanner) == 0 {
                break;
            }
            let at = usize::try_from(loc).unwrap_or(usize::MAX);
            if text.get(at) == Some(&b'$') && text.get(at + 1).is_some_and(u8::is_ascii_digit) {
                highest = highest.max(usize::try_from(value.ival).unwrap_or(0));
            }
        }
        pg_sys::scanner_finish(scanner);
    }
    highest
}

/// Parse-analyse and rewrite raw statement `raw` of `source` with
/// variable parameter types (`pg_analyze_and_rewrite_varparams`, as
/// `exec_parse_message` does); returns the rewritten queries and the type
/// of each parameter `$1 … $n` the statement refers to (`InvalidOid` or
/// `unknown` where nothing decided one). Raises what analysis raises.
///
/// # Safety
///
/// In a transaction, with an active snapshot if the statement needs one
/// (`analyze_requires_snapshot`); `raw` is a valid `RawStmt` of a parse of
/// `source`, which outlives the returned queries, as does the current
/// memory context the queries are made in.
pub(crate) unsafe fn analyse(
    raw: *mut pg_sys::RawStmt,
    source: &CStr,
) -> (*mut pg_sys::List, Vec<pg_sys::Oid>) {
    let mut types: *mut pg_sys::Oid = std::ptr::null_mut();
    let mut n: std::ffi::c_int = 0;
    // SAFETY: per the contract; `types` and `n` are out-parameters the
    // analysis fills in (a palloc'd array of `n` OIDs, or null with 0),
    // read right after it.
    unsafe {
        let queries = pg_sys::pg_analyze_and_rewrite_varparams(
            raw,
            source.as_ptr(),
            &mut types,
            &mut n,
            std::ptr::null_mut(),
        );
        let count = usize::try_from(n).unwrap_or(0);
        let types = if types.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(types, count).to_vec()
        };
        (queries, types)
    }
}

/// The parameters `types` (from [`analyse`]) can take `values` values:
/// as many of each, and every type decided. Raises 22023 with both counts,
/// or PostgreSQL's own 42P18 for the first undecided parameter (which the
/// analysis raises itself from PostgreSQL 15 on, before the count is
/// known; before 15, `exec_parse_message` checked it after).
pub(crate) fn check_types(types: &[pg_sys::Oid], values: usize) {
    if let Err(e) = params::check_shape(1, types.len(), values) {
        raise_args_error(&e);
    }
    if let Some(i) = types
        .iter()
        .position(|&t| t == pg_sys::InvalidOid || t == pg_sys::UNKNOWNOID)
    {
        raise(
            PgSqlErrorCode::ERRCODE_INDETERMINATE_DATATYPE,
            params::undetermined_type(i),
            Some("Give the parameter a type in the command, e.g. $1::int."),
        );
    }
}

/// Read value `index` of `args` (`text`, `None`: NULL) as type `ty`, with
/// the type's input function. An error the type raises is raised again
/// with its SQLSTATE, detail and hint, its message prefixed with which
/// value it was (`args[2]: invalid input syntax for type integer: "x"`).
fn input_value(index: usize, ty: pg_sys::Oid, text: Option<&str>) -> pg_sys::Datum {
    let c_text = match text.map(CString::new) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => raise(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            params::value_error(index, "contains a zero byte"),
            None,
        ),
    };
    let read = PgTryBuilder::new(|| {
        let (mut input, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        // SAFETY: in a transaction (our callers'), where the type cache and
        // function calls work; the out-parameters are plain OIDs. The input
        // function gets a NUL-terminated string that outlives the call, or
        // null for SQL NULL (which OidInputFunctionCall passes on as
        // exec_bind_message does); its result is allocated in the current
        // memory context.
        unsafe {
            pg_sys::getTypeInputInfo(ty, &mut input, &mut ioparam);
            let ptr = c_text
                .as_ref()
                .map_or(std::ptr::null_mut(), |c| c.as_ptr().cast_mut());
            Ok(pg_sys::OidInputFunctionCall(input, ptr, ioparam, -1))
        }
    })
    .catch_others(|e| {
        let report = match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        Err((
            report.sql_error_code(),
            report.message().to_owned(),
            report.detail().map(str::to_owned),
            report.hint().map(str::to_owned),
        ))
    })
    .execute();
    match read {
        Ok(datum) => datum,
        Err((code, message, detail, hint)) => {
            let mut report =
                pgrx::pg_sys::panic::ErrorReport::new(code, params::value_error(index, &message), "pg_jobs");
            if let Some(d) = detail {
                report = report.set_detail(d);
            }
            if let Some(h) = hint {
                report = report.set_hint(h);
            }
            report.report(pgrx::PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        }
    }
}

/// The parameter list of `values` read as `types` (as checked by
/// [`check_types`]), each value a constant the planner may fold in, as
/// `exec_bind_message` makes it. Allocated in the current memory context.
///
/// # Safety
///
/// In a transaction with an active snapshot (input functions may need
/// one, as `exec_bind_message` says); the current memory context outlives
/// the portal the list is given to.
pub(crate) unsafe fn bind(types: &[pg_sys::Oid], values: &[Option<String>]) -> pg_sys::ParamListInfo {
    let n = std::ffi::c_int::try_from(types.len()).unwrap_or(std::ffi::c_int::MAX);
    // SAFETY: makeParamList allocates room for `n` entries and sets
    // numParams; each entry written is within them (`i` < `types.len()` =
    // `n`, bounded by MAX_ARGS long before an int overflows).
    unsafe {
        let list = pg_sys::makeParamList(n);
        for (i, (&ty, value)) in types.iter().zip(values).enumerate() {
            let datum = input_value(i, ty, value.as_deref());
            let entry = (*list).params.as_mut_ptr().add(i);
            (*entry).value = datum;
            (*entry).isnull = value.is_none();
            (*entry).pflags = pg_sys::PARAM_FLAG_CONST as u16;
            (*entry).ptype = ty;
        }
        list
    }
}

//! Parameters of a command: `jobs.submit(command, args => text[])` and the
//! same `args` on `jobs.schedule` and `jobs.alter_job`.
//!
//! The command is one statement that refers to its values as `$1 … $n`;
//! `args` holds them as text, bound the way the extended query protocol
//! binds untyped text parameters (the statement's own casts and context
//! decide each parameter's type, the type's input function reads the
//! text, and a NULL element is SQL NULL). Binding itself needs PostgreSQL
//! and happens in the extension; what is decided here, without it:
//!
//! * what `args` means as given ([`normalize`]: NULL or an empty array is
//!   "no parameters");
//! * the limits on `args` ([`check_size`]);
//! * whether a command and its values fit together by shape: one statement,
//!   and exactly as many values as the statement has parameters
//!   ([`check_shape`]);
//! * the messages of the errors about a value ([`value_error`]) and about a
//!   parameter whose type nothing decides ([`undetermined_type`]);
//! * how a command travels with its values to the worker that runs it
//!   ([`segment`]).
//!
//! Terms: a *parameter* is a `$n` of the command (the command has as many
//! as its highest `n`); a *value* is an element of `args`.

pub mod segment;

use std::fmt;

/// The values of a command's parameters, as given: text, or SQL NULL.
pub type Args = Vec<Option<String>>;

/// A command and the values of its parameters (`None`: it has none), and
/// the named queue of its run (what its executor must know to start it
/// under the queue's rate limit and to take more of its runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub sql: String,
    pub args: Option<Args>,
    pub queue: Option<crate::queue::QueueTag>,
}

impl Command {
    /// A command without parameters, of a run without a queue.
    pub fn plain(sql: impl Into<String>) -> Command {
        Command {
            sql: sql.into(),
            args: None,
            queue: None,
        }
    }
}

/// Most values one command may have: a statement sent over PostgreSQL's
/// protocol can have no more parameters (the Bind message counts them in
/// 16 bits).
pub const MAX_ARGS: usize = 65_535;

/// Most bytes of text all values of one command may hold together: like
/// the command itself, they are copied into every run.
pub const MAX_ARGS_BYTES: usize = 1 << 20;

/// What `args` means: `None` and an empty array are both "no parameters"
/// (stored as NULL), so a command without `$n` may be given either, and
/// `jobs.alter_job(args => '{}')` removes a job's values.
pub fn normalize(args: Option<Args>) -> Option<Args> {
    args.filter(|a| !a.is_empty())
}

/// Why a command and its values do not fit together, or the values are
/// out of bounds. Each is SQLSTATE [`ArgsError::sqlstate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// Values were given with a command of several statements.
    SeveralStatements { statements: usize },
    /// Values were given but the command refers to none.
    NoParameters { values: usize },
    /// The command's parameters and the values given differ in number.
    WrongCount { parameters: usize, values: usize },
    /// More than [`MAX_ARGS`] values.
    TooMany { values: usize },
    /// More than [`MAX_ARGS_BYTES`] of text.
    TooLarge { bytes: usize },
    /// An array of more than one dimension.
    NotOneDimensional { dimensions: usize },
}

impl ArgsError {
    /// The SQLSTATE: 54000 (program_limit_exceeded) for the bounds, else
    /// 22023 (invalid_parameter_value).
    pub const fn sqlstate(&self) -> &'static str {
        match self {
            ArgsError::TooMany { .. } | ArgsError::TooLarge { .. } => "54000",
            _ => "22023",
        }
    }

    /// What to do about it, where there is something to say.
    pub const fn hint(&self) -> Option<&'static str> {
        match self {
            ArgsError::SeveralStatements { .. } => Some(
                "Pass the values to one statement, e.g. a CALL of a procedure that does the rest: \
                 jobs.submit('CALL p($1, $2)', args => ARRAY[...]).",
            ),
            ArgsError::NoParameters { .. } | ArgsError::WrongCount { .. } => {
                Some("The command refers to the first value as $1, the second as $2, and so on.")
            }
            ArgsError::TooMany { .. } | ArgsError::TooLarge { .. } => {
                Some("Pass large data through a table and give the job its key.")
            }
            ArgsError::NotOneDimensional { .. } => Some("Pass a one-dimensional text[]: ARRAY['a', 'b']."),
        }
    }
}

/// "1 value", "2 values".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArgsError::SeveralStatements { statements } => write!(
                f,
                "args need a command of one statement; this command has {statements} statements"
            ),
            ArgsError::NoParameters { values } => write!(
                f,
                "args has {} but the command has no parameters ($1, $2, ...)",
                count(values, "value", "values")
            ),
            ArgsError::WrongCount { parameters, values } => write!(
                f,
                "the command has {} ({}) but args has {}",
                count(parameters, "parameter", "parameters"),
                match parameters {
                    1 => "$1".to_owned(),
                    2 => "$1, $2".to_owned(),
                    n => format!("$1 ... ${n}"),
                },
                count(values, "value", "values")
            ),
            ArgsError::TooMany { values } => {
                write!(f, "args has too many values ({values}; at most {MAX_ARGS})")
            }
            ArgsError::TooLarge { bytes } => {
                write!(f, "args is too large ({bytes} bytes; at most {MAX_ARGS_BYTES})")
            }
            ArgsError::NotOneDimensional { dimensions } => {
                write!(
                    f,
                    "args must be a one-dimensional array, not {dimensions}-dimensional"
                )
            }
        }
    }
}

impl std::error::Error for ArgsError {}

/// `args` within [`MAX_ARGS`] values and [`MAX_ARGS_BYTES`] of text.
pub fn check_size(args: &[Option<String>]) -> Result<(), ArgsError> {
    if args.len() > MAX_ARGS {
        return Err(ArgsError::TooMany { values: args.len() });
    }
    let bytes: usize = args.iter().flatten().map(String::len).sum();
    if bytes > MAX_ARGS_BYTES {
        return Err(ArgsError::TooLarge { bytes });
    }
    Ok(())
}

/// Whether a command of `statements` statements whose parameters go up to
/// `$parameters` can take `values` values (`values` > 0: no values is no
/// question). In this order: one statement, then the count.
pub fn check_shape(statements: usize, parameters: usize, values: usize) -> Result<(), ArgsError> {
    if values == 0 {
        return Ok(());
    }
    if statements > 1 {
        return Err(ArgsError::SeveralStatements { statements });
    }
    match parameters {
        0 => Err(ArgsError::NoParameters { values }),
        p if p != values => Err(ArgsError::WrongCount {
            parameters: p,
            values,
        }),
        _ => Ok(()),
    }
}

/// The message of an error the input function of its parameter's type
/// raised for value `index` (0-based) of `args`: PostgreSQL's own
/// message, prefixed with which value it was (`args[1]` is the first, as
/// SQL counts array elements and as `$1` refers to it).
pub fn value_error(index: usize, message: &str) -> String {
    format!("args[{}]: {message}", index + 1)
}

/// PostgreSQL's own error (SQLSTATE [`UNDETERMINED_TYPE_SQLSTATE`]) for a
/// parameter whose type the statement leaves open (`SELECT $1 IS NULL`,
/// or `$1` never used while `$2` is), with `parameter` 0-based.
pub fn undetermined_type(parameter: usize) -> String {
    format!("could not determine data type of parameter ${}", parameter + 1)
}

/// indeterminate_datatype, as PostgreSQL raises it for the same case.
pub const UNDETERMINED_TYPE_SQLSTATE: &str = "42P18";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_values_is_no_parameters() {
        assert_eq!(normalize(None), None);
        assert_eq!(normalize(Some(vec![])), None);
        assert_eq!(normalize(Some(vec![None])), Some(vec![None]));
        // Without values, nothing about the command is asked.
        assert_eq!(check_shape(3, 0, 0), Ok(()));
        assert_eq!(check_shape(1, 2, 0), Ok(()));
    }

    #[test]
    fn shape_errors_say_how_many_each_side_has() {
        assert_eq!(check_shape(1, 2, 2), Ok(()));
        let e = check_shape(2, 1, 1).unwrap_err();
        assert_eq!(e, ArgsError::SeveralStatements { statements: 2 });
        assert_eq!(
            e.to_string(),
            "args need a command of one statement; this command has 2 statements"
        );
        let e = check_shape(1, 0, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "args has 1 value but the command has no parameters ($1, $2, ...)"
        );
        let e = check_shape(1, 3, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the command has 3 parameters ($1 ... $3) but args has 2 values"
        );
        let e = check_shape(1, 1, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the command has 1 parameter ($1) but args has 2 values"
        );
        let e = check_shape(1, 2, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the command has 2 parameters ($1, $2) but args has 1 value"
        );
        for e in [
            ArgsError::SeveralStatements { statements: 2 },
            ArgsError::NoParameters { values: 1 },
            ArgsError::WrongCount {
                parameters: 1,
                values: 2,
            },
            ArgsError::NotOneDimensional { dimensions: 2 },
        ] {
            assert_eq!(e.sqlstate(), "22023", "{e}");
            assert!(e.hint().is_some_and(|h| !h.is_empty()), "{e}");
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(check_size(&vec![None; MAX_ARGS]), Ok(()));
        let e = check_size(&vec![None; MAX_ARGS + 1]).unwrap_err();
        assert_eq!(e.sqlstate(), "54000");
        assert_eq!(e.to_string(), "args has too many values (65536; at most 65535)");
        let big = vec![
            Some("x".repeat(MAX_ARGS_BYTES / 2)),
            Some("y".repeat(MAX_ARGS_BYTES / 2)),
        ];
        assert_eq!(check_size(&big), Ok(()));
        let bigger = vec![
            Some("x".repeat(MAX_ARGS_BYTES / 2)),
            Some("y".repeat(MAX_ARGS_BYTES / 2 + 1)),
        ];
        assert_eq!(
            check_size(&bigger),
            Err(ArgsError::TooLarge {
                bytes: MAX_ARGS_BYTES + 1
            })
        );
    }

    #[test]
    fn value_and_type_messages_count_from_one() {
        assert_eq!(
            value_error(0, "invalid input syntax for type integer: \"x\""),
            "args[1]: invalid input syntax for type integer: \"x\""
        );
        assert_eq!(
            undetermined_type(1),
            "could not determine data type of parameter $2"
        );
    }

    proptest! {
        /// Values are accepted exactly when there is one statement and the
        /// count matches; every refusal is one of the three shape errors,
        /// and it names both counts.
        #[test]
        fn shape_is_one_statement_and_equal_counts(statements in 1usize..4, parameters in 0usize..6, values in 1usize..6) {
            let verdict = check_shape(statements, parameters, values);
            prop_assert_eq!(verdict.is_ok(), statements == 1 && parameters == values);
            if let Err(e) = verdict {
                let text = e.to_string();
                match e {
                    ArgsError::SeveralStatements { .. } => prop_assert!(statements > 1),
                    ArgsError::NoParameters { .. } => {
                        prop_assert_eq!(parameters, 0);
                        prop_assert!(text.contains(&values.to_string()));
                    }
                    ArgsError::WrongCount { .. } => {
                        prop_assert!(text.contains(&parameters.to_string()));
                        prop_assert!(text.contains(&values.to_string()));
                    }
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
        }
    }
}

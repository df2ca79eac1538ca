//! What `args` checks at submit, schedule and alter_job: each refusal
//! with its SQLSTATE, and nothing written.

use super::*;

#[test]
fn what_can_be_known_at_submit_is_refused_with_its_sqlstate_and_nothing_is_written() {
    let (_c, mut s) = cluster("params-submit-errors");
    s.batch_execute(
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE DOMAIN required AS text NOT NULL;
         CREATE TABLE got (n int);
         SELECT jobs.schedule('base', '@yearly', 'SELECT 1');",
    )
    .unwrap();
    let state = |s: &mut Client| -> String {
        one(
            s,
            "SELECT concat_ws(' | ', (SELECT count(*) FROM jobs.run),
                    (SELECT string_agg(concat_ws(',', name, command, args), ';' ORDER BY id) FROM jobs.job))",
        )
    };
    let before = state(&mut s);
    // (command, args as SQL, SQLSTATE, message)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "SELECT $1; SELECT 2",
            "'{x}'",
            "22023",
            "args need a command of one statement; this command has 2 statements",
        ),
        (
            "SELECT 1",
            "'{x}'",
            "22023",
            "args has 1 value but the command has no parameters ($1, $2, ...)",
        ),
        // A $1 in a string, a comment or a dollar-quoted body is no parameter.
        (
            "SELECT '$1', $$ $2 $$ -- $3",
            "'{x}'",
            "22023",
            "args has 1 value but the command has no parameters ($1, $2, ...)",
        ),
        (
            "SELECT $1::int, $2::int",
            "'{1}'",
            "22023",
            "the command has 2 parameters ($1, $2) but args has 1 value",
        ),
        (
            "SELECT $1::int",
            "'{1,2}'",
            "22023",
            "the command has 1 parameter ($1) but args has 2 values",
        ),
        (
            "SELECT $3::int",
            "'{1,2}'",
            "22023",
            "the command has 3 parameters ($1 ... $3) but args has 2 values",
        ),
        (
            "SELECT $1::int",
            "'{ten}'",
            "22P02",
            "args[1]: invalid input syntax for type integer: \"ten\"",
        ),
        (
            "SELECT $1::int, $2::int",
            "'{1,2x}'",
            "22P02",
            "args[2]: invalid input syntax for type integer: \"2x\"",
        ),
        (
            "SELECT $1::smallint",
            "'{70000}'",
            "22003",
            "args[1]: value \"70000\" is out of range for type smallint",
        ),
        (
            "SELECT $1::numeric",
            "'{1.2.3}'",
            "22P02",
            "args[1]: invalid input syntax for type numeric: \"1.2.3\"",
        ),
        (
            "SELECT $1::bool",
            "'{maybe}'",
            "22P02",
            "args[1]: invalid input syntax for type boolean: \"maybe\"",
        ),
        (
            "SELECT $1::jsonb",
            "ARRAY['{\"a\": ']",
            "22P02",
            "args[1]: invalid input syntax for type json",
        ),
        (
            "SELECT $1::timestamptz",
            "'{yesterday-ish}'",
            "22007",
            "args[1]: invalid input syntax for type timestamp with time zone: \"yesterday-ish\"",
        ),
        (
            "SELECT $1::int[]",
            "ARRAY['{1,x}']",
            "22P02",
            "args[1]: invalid input syntax for type integer: \"x\"",
        ),
        (
            "SELECT $1::mood",
            "'{glad}'",
            "22P02",
            "args[1]: invalid input value for enum mood: \"glad\"",
        ),
        (
            "SELECT $1::positive",
            "'{0}'",
            "23514",
            "args[1]: value for domain positive violates check constraint \"positive_check\"",
        ),
        (
            "SELECT $1::required",
            "ARRAY[NULL]",
            "23502",
            "args[1]: domain required does not allow null values",
        ),
        // The context types it: the table's column.
        (
            "INSERT INTO got (n) VALUES ($1)",
            "'{abc}'",
            "22P02",
            "args[1]: invalid input syntax for type integer: \"abc\"",
        ),
        (
            "SELECT $1 IS NULL",
            "'{1}'",
            "42P18",
            "could not determine data type of parameter $1",
        ),
        (
            "SELECT $2::int",
            "'{1,2}'",
            "42P18",
            "could not determine data type of parameter $1",
        ),
        (
            "SELECT $1",
            "'{{a,b},{c,d}}'",
            "22023",
            "args must be a one-dimensional array, not 2-dimensional",
        ),
        (
            "SELECT $1",
            "array_fill('x'::text, ARRAY[65536])",
            "54000",
            "args has too many values (65536; at most 65535)",
        ),
    ];
    let mut wrong = Vec::new();
    for &(command, args, code, message) in cases {
        for call in [
            format!("SELECT jobs.submit($1, args => {args})"),
            format!("SELECT jobs.schedule('new', '@hourly', $1, args => {args})"),
            format!("SELECT jobs.alter_job('base', command => $1, args => {args})"),
        ] {
            let (got_code, got_message) = error_of(&mut s, &call, &[&command]);
            let fits = got_code == code
                && (got_message == message
                    || (message.ends_with("json") && got_message.starts_with(message)));
            if !fits {
                wrong.push(format!(
                    "{call} [{command}]\n    got      {got_code} {got_message}\n    expected {code} {message}"
                ));
            }
            assert_eq!(state(&mut s), before, "{call} [{command}] wrote something");
        }
    }
    // The values a job keeps are checked against a new command, and new
    // values against the command it keeps.
    s.batch_execute("SELECT jobs.schedule('typed', '@yearly', 'SELECT $1::int', args => '{5}')")
        .unwrap();
    let before = state(&mut s);
    for (call, code, message) in [
        (
            "SELECT jobs.alter_job('typed', command => 'SELECT $1::mood')",
            "22P02",
            "args[1]: invalid input value for enum mood: \"5\"",
        ),
        (
            "SELECT jobs.alter_job('typed', command => 'SELECT $1::int, $2::int')",
            "22023",
            "the command has 2 parameters ($1, $2) but args has 1 value",
        ),
        (
            "SELECT jobs.alter_job('typed', command => 'SELECT 1')",
            "22023",
            "args has 1 value but the command has no parameters ($1, $2, ...)",
        ),
        (
            "SELECT jobs.alter_job('typed', args => '{five}')",
            "22P02",
            "args[1]: invalid input syntax for type integer: \"five\"",
        ),
    ] {
        let (got_code, got_message) = error_of(&mut s, call, &[]);
        if (got_code.as_str(), got_message.as_str()) != (code, message) {
            wrong.push(format!(
                "{call}\n    got      {got_code} {got_message}\n    expected {code} {message}"
            ));
        }
        assert_eq!(state(&mut s), before, "{call} wrote something");
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}

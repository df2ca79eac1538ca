//! Failure notifications: which endings are announced on
//! `pg_jobs.notify_channel`, and the payload.
//!
//! A run is announced when it ended `failed`, `timed_out` or `crashed` and
//! no attempt follows (a retry would make it not final). The payload names
//! the run only by ids, its database, status and SQLSTATE: `LISTEN` needs
//! no privilege, so it carries nothing a listener could not otherwise see
//! (no job name, command or message: a listener reads those from
//! `jobs.run` under its own rights).

use crate::run::RunStatus;

/// Whether a run that ended with `status` is announced, given whether a
/// retry of it was queued.
pub fn announces(status: RunStatus, retried: bool) -> bool {
    !retried
        && matches!(
            status,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Crashed
        )
}

/// The JSON payload for a run's final failure.
pub fn failure_payload(
    database: &str,
    run_id: i64,
    job_id: Option<i64>,
    status: RunStatus,
    sqlstate: Option<&str>,
) -> String {
    let job = job_id.map_or("null".to_owned(), |id| id.to_string());
    let code = sqlstate.map_or("null".to_owned(), json_string);
    format!(
        "{{\"database\":{},\"run_id\":{run_id},\"job_id\":{job},\"status\":\"{}\",\"sqlstate\":{code}}}",
        json_string(database),
        status.as_str()
    )
}

/// The JSON payload for a daemon that failed and waits to be restarted
/// (its backoff).
pub fn daemon_backoff_payload(database: &str, daemon_id: i64, sqlstate: Option<&str>) -> String {
    let code = sqlstate
        .filter(|c| !c.is_empty())
        .map_or("null".to_owned(), json_string);
    format!(
        "{{\"database\":{},\"daemon_id\":{daemon_id},\"status\":\"backoff\",\"sqlstate\":{code}}}",
        json_string(database)
    )
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_final_failures_are_announced() {
        for s in [RunStatus::Failed, RunStatus::TimedOut, RunStatus::Crashed] {
            assert!(announces(s, false), "{s:?}");
            assert!(!announces(s, true), "{s:?} with a retry");
        }
        for s in [
            RunStatus::Succeeded,
            RunStatus::Cancelled,
            RunStatus::Skipped,
            RunStatus::Queued,
        ] {
            assert!(!announces(s, false), "{s:?}");
        }
    }

    #[test]
    fn the_payload_is_json_with_ids_and_no_more() {
        assert_eq!(
            failure_payload("app", 42, Some(7), RunStatus::Failed, Some("22012")),
            r#"{"database":"app","run_id":42,"job_id":7,"status":"failed","sqlstate":"22012"}"#
        );
        assert_eq!(
            failure_payload("we\"ird\\db\n", 1, None, RunStatus::Crashed, None),
            r#"{"database":"we\"ird\\db\n","run_id":1,"job_id":null,"status":"crashed","sqlstate":null}"#
        );
    }

    #[test]
    fn a_daemons_backoff_payload() {
        assert_eq!(
            daemon_backoff_payload("app", 3, Some("XX000")),
            r#"{"database":"app","daemon_id":3,"status":"backoff","sqlstate":"XX000"}"#
        );
        assert_eq!(
            daemon_backoff_payload("app", 3, Some("")),
            r#"{"database":"app","daemon_id":3,"status":"backoff","sqlstate":null}"#
        );
    }

    proptest! {
        /// Whatever the database's name, the payload is one JSON object
        /// that reads back to that name.
        #[test]
        fn any_database_name_reads_back(name in "\\PC{0,30}", run in any::<i64>()) {
            let p = failure_payload(&name, run, None, RunStatus::TimedOut, Some("57014"));
            let v: serde_json::Value = serde_json::from_str(&p).unwrap();
            prop_assert_eq!(v["database"].as_str(), Some(name.as_str()));
            prop_assert_eq!(v["run_id"].as_i64(), Some(run));
        }
    }
}

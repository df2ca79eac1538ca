//! How the pages read the database: every query goes through [`Db`], by
//! name, so that `pg_jobs web --measure` can show each query's plan (and
//! its test can check that none reads `jobs.run` or `jobs.job` whole).

use super::WebError;
use postgres::types::ToSql;
use postgres::{Client, Row};

/// A page's connection, and (when measuring) the plans of what it ran.
pub struct Db<'a> {
    c: &'a mut Client,
    /// `Some`: each query is first run under `EXPLAIN`, and the page name,
    /// query name and the scans of its plan are kept here.
    pub plans: Option<Vec<(String, Vec<String>)>>,
}

impl<'a> Db<'a> {
    pub fn new(c: &'a mut Client) -> Db<'a> {
        Db { c, plans: None }
    }

    pub fn query(
        &mut self,
        name: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, WebError> {
        if let Some(plans) = self.plans.as_mut() {
            let rows = self
                .c
                .query(&format!("EXPLAIN (VERBOSE, FORMAT JSON) {sql}"), params)
                .map_err(WebError::from)?;
            let plan: serde_json::Value = rows
                .first()
                .ok_or_else(|| WebError::internal("EXPLAIN returned nothing"))?
                .try_get(0)
                .map_err(|e| WebError::internal(&format!("reading EXPLAIN's plan: {e}")))?;
            plans.push((name.to_owned(), scans(&plan)));
        }
        self.c.query(sql, params).map_err(WebError::from)
    }

    pub fn query_one(
        &mut self,
        name: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, WebError> {
        self.query(name, sql, params)?
            .into_iter()
            .next()
            .ok_or_else(|| WebError::internal(&format!("{name}: no row")))
    }
}

/// The scans of an `EXPLAIN (VERBOSE, FORMAT JSON)` plan, as
/// "Index Scan on jobs.run using run_failed", depth first.
pub fn scans(plan: &serde_json::Value) -> Vec<String> {
    fn walk(node: &serde_json::Value, out: &mut Vec<String>) {
        let kind = node["Node Type"].as_str().unwrap_or("");
        if let Some(rel) = node["Relation Name"].as_str() {
            let schema = node["Schema"].as_str().unwrap_or("?");
            let mut s = format!("{kind} on {schema}.{rel}");
            if let Some(ix) = node["Index Name"].as_str() {
                s.push_str(&format!(" using {ix}"));
            }
            out.push(s);
        } else if kind == "Function Scan" {
            out.push(format!(
                "Function Scan on {}",
                node["Function Name"].as_str().unwrap_or("?")
            ));
        }
        if let Some(children) = node["Plans"].as_array() {
            for c in children {
                walk(c, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(top) = plan.get(0) {
        walk(&top["Plan"], &mut out);
    }
    out
}

/// A timestamp column as the pages show it (the session's time zone).
pub fn ts(col: &str) -> String {
    format!("to_char({col}, 'YYYY-MM-DD HH24:MI:SS')")
}

/// Run statuses a filter or a colour groups together.
pub fn status_group(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "queued" => &["queued"],
        "waiting" => &["waiting"],
        "running" => &["starting", "running"],
        "succeeded" => &["succeeded"],
        "failed" => &["failed", "timed_out", "crashed"],
        "cancelled" => &["cancelled"],
        "skipped" => &["skipped"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_are_found_at_every_depth() {
        let plan = serde_json::json!([{ "Plan": {
            "Node Type": "Limit",
            "Plans": [{ "Node Type": "Nested Loop", "Plans": [
                { "Node Type": "Index Scan", "Schema": "jobs", "Relation Name": "run", "Index Name": "run_pkey" },
                { "Node Type": "Seq Scan", "Schema": "jobs", "Relation Name": "job" },
                { "Node Type": "Function Scan", "Function Name": "_workers" }
            ]}]
        }}]);
        assert_eq!(
            scans(&plan),
            [
                "Index Scan on jobs.run using run_pkey",
                "Seq Scan on jobs.job",
                "Function Scan on _workers"
            ]
        );
    }
}

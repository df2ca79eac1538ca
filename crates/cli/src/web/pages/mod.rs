//! The pages: each a pure function from what its queries read to HTML
//! (maud templates, checked when the binary is built), in the frame that
//! [`layout`] draws around it.

pub mod jobs;
pub mod login;
pub mod overview;
pub mod registry;
pub mod runs;

use super::auth::Flash;
use super::WebError;
use maud::{html, Markup, DOCTYPE};

/// What every page needs to know about who is looking.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub role: String,
    pub database: String,
    pub csrf: String,
    pub read_only: bool,
    /// Everyone is `role` (`--as-connection`): said on every page.
    pub as_connection: bool,
    pub flash: Option<Flash>,
    /// This page's path and query, where an action comes back to.
    pub here: String,
}

/// A page's title and content.
pub struct Page {
    pub title: String,
    pub body: Markup,
}

const NAV: [(&str, &str); 6] = [
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/runs", "Runs"),
    ("/queues", "Queues"),
    ("/daemons", "Daemons"),
    ("/workers", "Workers"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · pg_jobs" }
            link rel="stylesheet" href="/static/style.css";
        }
    }
}

/// A signed-in page: navigation, who is looking, the banner of single-role
/// and read-only modes, the message an action left, then `page`.
pub fn layout(ctx: &Ctx, page: &Page) -> String {
    let section = ctx.here.split(['?', '/']).nth(1).unwrap_or("");
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(&page.title))
            body {
                header.top {
                    span.brand { "pg_jobs" }
                    nav {
                        @for (href, label) in NAV {
                            @let current = href.trim_start_matches('/') == section;
                            a href=(href) class=[current.then_some("current")] { (label) }
                        }
                    }
                    span.who {
                        (ctx.role) " @ " (ctx.database)
                        @if !ctx.as_connection {
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(ctx.csrf);
                                button.link type="submit" id="sign-out" { "Sign out" }
                            }
                        }
                    }
                }
                @if ctx.as_connection {
                    div.banner.single id="single-role" {
                        "Single-role mode (--as-connection): everyone who opens this page sees and acts as role "
                        strong { (ctx.role) } ", without signing in."
                    }
                }
                @if ctx.read_only {
                    div.banner.readonly id="read-only" { "Read-only (--read-only): actions are hidden and refused." }
                }
                @if let Some(f) = &ctx.flash {
                    div class=(if f.ok { "flash ok" } else { "flash error" }) id="flash" {
                        (f.text)
                        @if let Some(run) = f.run {
                            " " a href=(format!("/runs/{run}")) { "run " (run) }
                        }
                    }
                }
                main {
                    h1 { (page.title) }
                    (page.body)
                }
            }
        }
    }
    .into_string()
}

/// A page for someone not signed in (the sign-in page).
pub fn bare(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "pg_jobs" } }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// What went wrong, with the server's SQLSTATE when it was the server.
pub fn error(e: &WebError) -> Page {
    Page {
        title: "Error".into(),
        body: html! {
            p.error id="error" {
                (e.message)
                @if let Some(code) = &e.sqlstate { " (SQLSTATE " span.sqlstate { (code) } ")" }
            }
        },
    }
}

/// A button that posts `action` on `field` (hidden in read-only mode).
pub fn action(ctx: &Ctx, action: &str, field: (&str, &str), label: &str) -> Markup {
    if ctx.read_only {
        return html! {};
    }
    html! {
        form.inline method="post" action="/action" {
            input type="hidden" name="csrf" value=(ctx.csrf);
            input type="hidden" name="action" value=(action);
            input type="hidden" name=(field.0) value=(field.1);
            input type="hidden" name="back" value=(ctx.here);
            button.action type="submit" data-action=(action) { (label) }
        }
    }
}

/// A run status, coloured.
pub fn status(s: &str) -> Markup {
    html! { span class=(format!("status {s}")) { (s) } }
}

/// Milliseconds as people read them.
pub fn duration_ms(ms: Option<f64>) -> String {
    match ms {
        None => String::new(),
        Some(ms) if ms < 1000.0 => format!("{ms:.0} ms"),
        Some(ms) if ms < 60_000.0 => format!("{:.1} s", ms / 1000.0),
        Some(ms) if ms < 3_600_000.0 => format!("{:.1} min", ms / 60_000.0),
        Some(ms) => format!("{:.1} h", ms / 3_600_000.0),
    }
}

/// A link to a list of runs with these filters.
pub fn runs_link(filters: &[(&str, &str)]) -> String {
    let q: Vec<String> = filters
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("/runs?{}", q.join("&"))
}

/// Percent-encode a query-string value.
pub fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(read_only: bool) -> Ctx {
        Ctx {
            role: "alice".into(),
            database: "app".into(),
            csrf: "tok".into(),
            read_only,
            as_connection: true,
            flash: None,
            here: "/jobs".into(),
        }
    }

    #[test]
    fn read_only_pages_have_no_action_forms_and_every_page_says_who() {
        let page = Page {
            title: "Jobs".into(),
            body: action(&ctx(false), "pause", ("name", "a<b"), "Pause"),
        };
        let html = layout(&ctx(false), &page);
        assert!(html.contains(r#"name="csrf" value="tok""#), "{html}");
        assert!(html.contains(r#"value="a&lt;b""#), "escaped: {html}");
        assert!(html.contains("Single-role mode"), "{html}");
        let ro = layout(
            &ctx(true),
            &Page {
                title: "Jobs".into(),
                body: action(&ctx(true), "pause", ("name", "x"), "Pause"),
            },
        );
        assert!(!ro.contains("/action"), "{ro}");
        assert!(ro.contains("Read-only"), "{ro}");
    }

    #[test]
    fn links_encode_their_values() {
        assert_eq!(runs_link(&[("job", "a b&c")]), "/runs?job=a%20b%26c");
        assert_eq!(duration_ms(Some(1500.0)), "1.5 s");
        assert_eq!(duration_ms(None), "");
    }
}

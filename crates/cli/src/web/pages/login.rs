//! The sign-in page: a PostgreSQL role and its password.

use maud::{html, Markup};

/// The form; `error`: why the last attempt was refused; `target`: where
/// the server connects (no secrets: host, port, database).
pub fn page(user: &str, error: Option<&str>, target: &str) -> Markup {
    html! {
        section.signin {
            h1 { "Sign in" }
            p.hint { "With a PostgreSQL role and its password: the server connects to " code { (target) } " as that role, and PostgreSQL checks the password. You see and act on what that role may." }
            @if let Some(e) = error {
                p.error id="signin-error" { (e) }
            }
            form method="post" action="/login" {
                label { "Role" input type="text" name="user" value=(user) autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password"; }
                button type="submit" id="sign-in" { "Sign in" }
            }
        }
    }
}

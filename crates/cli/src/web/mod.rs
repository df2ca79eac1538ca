//! `pg_jobs web`: a dashboard in the browser, served by this command.
//!
//! Each browser signs in with a PostgreSQL role and its password and gets
//! a connection of its own as that role (`auth`), so row-level security
//! and `jobs._acts_for` decide what it sees and may do, exactly as in
//! psql. With `--as-connection` there is no sign-in: everyone is the
//! given connection's role, and every page says so. Pages (`pages`) are
//! rendered on the server from what their queries (`queries`) read; the
//! buttons post forms that call the SQL API (`actions`), protected by a
//! per-session CSRF token and a same-origin check. No script, no CDN: the
//! style sheet is built into the binary.
//!
//! The `postgres` client blocks, so each request's database work runs on
//! tokio's blocking pool, holding its session's connection; one session's
//! requests take turns, sessions do not wait for each other.

pub mod actions;
pub mod auth;
pub mod chart;
mod measure;
pub mod pages;
pub mod queries;

pub use measure::measure;

use auth::{Flash, Session, Sessions};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chart::ChartCache;
use pages::{Ctx, Page};
use postgres::config::Host;
use postgres::{Client, Config, NoTls};
use queries::Db;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where `pg_jobs web` listens by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A page query running longer than this is cancelled by the server: a
/// dashboard must not hold a backend busy for minutes.
const STATEMENT_TIMEOUT: &str = "30s";

const STYLE: &str = include_str!("style.css");

/// The command line's choices.
pub struct Options {
    pub listen: String,
    pub as_connection: bool,
    pub read_only: bool,
}

/// Why a page or action could not be served: an HTTP status, a message,
/// and the server's SQLSTATE when the server said no.
#[derive(Debug, Clone)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    pub sqlstate: Option<String>,
}

impl WebError {
    fn new(status: StatusCode, message: &str) -> WebError {
        WebError {
            status,
            message: message.to_owned(),
            sqlstate: None,
        }
    }
    pub fn internal(message: &str) -> WebError {
        WebError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn bad_request(message: &str) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: &str) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, message)
    }
    fn forbidden(message: &str) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<postgres::Error> for WebError {
    fn from(e: postgres::Error) -> WebError {
        match e.as_db_error() {
            Some(d) => {
                let code = d.code().code();
                let status = match code {
                    "42501" => StatusCode::FORBIDDEN,
                    "42704" => StatusCode::NOT_FOUND,
                    "57014" => StatusCode::SERVICE_UNAVAILABLE,
                    c if c.starts_with("22") => StatusCode::BAD_REQUEST,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let mut message = d.message().to_owned();
                if let Some(detail) = d.detail() {
                    message.push_str(&format!(" — {detail}"));
                }
                WebError {
                    status,
                    message,
                    sqlstate: Some(code.to_owned()),
                }
            }
            None => WebError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the database connection failed: {}", crate::db_error(e)),
            ),
        }
    }
}

/// Connect with `cfg` and set what every web connection has.
fn connect(cfg: &Config) -> Result<Client, postgres::Error> {
    let mut c = cfg.connect(NoTls)?;
    c.batch_execute(&format!("SET statement_timeout = '{STATEMENT_TIMEOUT}'"))?;
    Ok(c)
}

fn whoami(c: &mut Client) -> Result<(String, String), postgres::Error> {
    let r = c.query_one("SELECT current_user::text, current_database()::text", &[])?;
    Ok((r.get(0), r.get(1)))
}

/// Where the server connects, for people: no user, no password.
fn describe(cfg: &Config) -> String {
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(s) => s.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = cfg.get_ports().iter().map(u16::to_string).collect();
    format!(
        "host={} port={} dbname={}",
        hosts.join(","),
        ports.join(","),
        cfg.get_dbname().unwrap_or("")
    )
}

struct App {
    sessions: Sessions,
    /// `--as-connection`: the one session everyone shares.
    single: Option<Arc<Session>>,
    /// The given connection's settings; a sign-in replaces user and password.
    base: Config,
    target: String,
    read_only: bool,
    /// The `Host` headers served, when listening on loopback (`None`:
    /// any). A page of another site whose name an attacker points at
    /// 127.0.0.1 (DNS rebinding) would be same-origin with its own pages
    /// and send its own name: it gets nothing.
    hosts: std::sync::OnceLock<Option<Vec<String>>>,
}

type Shared = Arc<App>;

/// The `Host` values a browser on this machine sends for a loopback
/// listener at `addr`.
fn loopback_hosts(addr: std::net::SocketAddr) -> Option<Vec<String>> {
    if !addr.ip().is_loopback() {
        return None;
    }
    let port = addr.port();
    let ip = match addr {
        std::net::SocketAddr::V4(a) => a.ip().to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    Some(vec![format!("{ip}:{port}"), format!("localhost:{port}")])
}

/// Refuse requests for a host name that is not ours (see `App::hosts`).
async fn host_guard(
    State(app): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(Some(allowed)) = app.hosts.get() {
        let host = header_str(req.headers(), header::HOST).unwrap_or("");
        if !allowed.iter().any(|a| a == host) {
            return refuse(&WebError::new(
                StatusCode::MISDIRECTED_REQUEST,
                &format!(
                    "Refused: this server answers to {} only (Host {host:?}).",
                    allowed.join(" and ")
                ),
            ));
        }
    }
    next.run(req).await
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl App {
    fn session(&self, h: &HeaderMap) -> Option<Arc<Session>> {
        match &self.single {
            Some(s) => Some(s.clone()),
            None => self.sessions.find(header_str(h, header::COOKIE)),
        }
    }

    fn ctx(&self, s: &Session, here: String) -> Ctx {
        Ctx {
            role: s.role.clone(),
            database: s.database.clone(),
            csrf: s.csrf.clone(),
            read_only: self.read_only,
            as_connection: self.single.is_some(),
            flash: s.take_flash(),
            here,
        }
    }
}

/// Run `f` on the session's connection (connecting again if it was lost).
fn with_conn<T>(
    s: &Session,
    f: impl FnOnce(&mut Client, &mut ChartCache) -> Result<T, WebError>,
) -> Result<T, WebError> {
    // A page that panicked (a bug) poisons the lock: take it anyway, with
    // a fresh connection, so the session goes on.
    if s.conn.is_poisoned() {
        s.conn.clear_poison();
        if let Ok(mut g) = s.conn.lock() {
            g.client = None;
        }
    }
    let mut guard = s
        .conn
        .lock()
        .map_err(|_| WebError::internal("this session's connection is unusable; sign in again"))?;
    let auth::Conn { client, charts } = &mut *guard;
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = Some(connect(&s.config).map_err(WebError::from)?);
    }
    let Some(c) = client.as_mut() else {
        return Err(WebError::internal("no connection"));
    };
    let out = f(c, charts);
    if c.is_closed() {
        *client = None;
    }
    out
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

fn refuse(e: &WebError) -> Response {
    html(e.status, pages::bare("Refused", pages::error(e).body))
}

/// Every response: no caching of pages that show live data and a CSRF
/// token, no framing (clickjacking), no script, styles from this server.
async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Same-origin posts keep their Referer (a fallback to Origin).
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (k, v) in set {
        if !h.contains_key(&k) {
            h.insert(k, HeaderValue::from_static(v));
        }
    }
    r
}

/// Render a page for the session the request belongs to.
async fn render<F>(app: Shared, h: HeaderMap, here: String, f: F) -> Response
where
    F: FnOnce(&mut Db, &Ctx, &mut ChartCache) -> Result<Page, WebError> + Send + 'static,
{
    let Some(s) = app.session(&h) else {
        return redirect("/login");
    };
    let ctx = app.ctx(&s, here);
    let done = tokio::task::spawn_blocking(move || {
        let page = with_conn(&s, |c, charts| f(&mut Db::new(c), &ctx, charts));
        match page {
            Ok(p) => (StatusCode::OK, pages::layout(&ctx, &p)),
            Err(e) => (e.status, pages::layout(&ctx, &pages::error(&e))),
        }
    })
    .await;
    match done {
        Ok((status, body)) => html(status, body),
        Err(e) => refuse(&WebError::internal(&format!("the page failed: {e}"))),
    }
}

fn here(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
}

async fn overview(State(app): State<Shared>, h: HeaderMap) -> Response {
    render(app, h, "/".into(), pages::overview::page).await
}

async fn jobs(
    State(app): State<Shared>,
    h: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    render(app, h, here(&uri), move |db, ctx, _| {
        pages::jobs::page(db, ctx, &q)
    })
    .await
}

async fn runs(
    State(app): State<Shared>,
    h: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let filter = pages::runs::Filter::parse(&q);
    render(app, h, here(&uri), move |db, ctx, _| match filter {
        Ok(f) => pages::runs::list(db, ctx, &f),
        Err(e) => Err(WebError::bad_request(&e)),
    })
    .await
}

async fn run(
    State(app): State<Shared>,
    h: HeaderMap,
    uri: axum::http::Uri,
    Path(id): Path<String>,
) -> Response {
    render(app, h, here(&uri), move |db, ctx, _| match id.parse::<i64>() {
        Ok(id) => pages::runs::one(db, ctx, id),
        Err(_) => Err(WebError::not_found(&format!("{id:?} is not a run id"))),
    })
    .await
}

async fn queues(State(app): State<Shared>, h: HeaderMap) -> Response {
    render(app, h, "/queues".into(), |db, ctx, _| {
        pages::registry::queues(db, ctx)
    })
    .await
}

async fn daemons(State(app): State<Shared>, h: HeaderMap) -> Response {
    render(app, h, "/daemons".into(), |db, ctx, _| {
        pages::registry::daemons(db, ctx)
    })
    .await
}

async fn workers(State(app): State<Shared>, h: HeaderMap) -> Response {
    render(app, h, "/workers".into(), |db, ctx, _| {
        pages::registry::workers(db, ctx)
    })
    .await
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// A form post from one of our own pages (see `auth::same_origin`).
fn from_our_pages(h: &HeaderMap) -> bool {
    auth::same_origin(
        header_str(h, header::HOST),
        header_str(h, header::ORIGIN),
        header_str(h, header::REFERER),
    )
}

fn not_ours() -> Response {
    refuse(&WebError::forbidden(
        "Refused: this form was not posted from this server's own pages (its Origin or Referer names another site).",
    ))
}

async fn login_page(State(app): State<Shared>) -> Response {
    if app.single.is_some() {
        return redirect("/");
    }
    html(
        StatusCode::OK,
        pages::bare("Sign in", pages::login::page("", None, &app.target)),
    )
}

async fn login(
    State(app): State<Shared>,
    h: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if app.single.is_some() {
        return redirect("/");
    }
    if !from_our_pages(&h) {
        return not_ours();
    }
    let user = form.get("user").map(|u| u.trim().to_owned()).unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let again = |status: StatusCode, e: &str| {
        html(
            status,
            pages::bare("Sign in", pages::login::page(&user, Some(e), &app.target)),
        )
    };
    if user.is_empty() {
        return again(StatusCode::BAD_REQUEST, "Give a role name.");
    }
    let mut cfg = app.base.clone();
    // Always the password typed here, never one the server itself was
    // given (environment, ~/.pgpass): signing in proves the password.
    cfg.user(&user).password(password.as_bytes());
    let signed_in = tokio::task::spawn_blocking(move || -> Result<Session, String> {
        let mut c = connect(&cfg).map_err(|e| {
            let e = WebError::from(e);
            match e.sqlstate {
                Some(code) => format!("Sign-in refused: {} (SQLSTATE {code})", e.message),
                None => format!("Sign-in failed: {}", e.message),
            }
        })?;
        let (role, database) = whoami(&mut c).map_err(crate::db_error)?;
        Session::new(role, database, cfg, c)
    })
    .await;
    match signed_in {
        Ok(Ok(session)) => match app.sessions.insert(session) {
            Ok(cookie) => (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/".to_owned()), (header::SET_COOKIE, cookie)],
            )
                .into_response(),
            Err(e) => again(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
        Ok(Err(e)) => {
            // Each refused guess costs the guesser half a second of this
            // connection (sessions of others go on meanwhile).
            tokio::time::sleep(Duration::from_millis(500)).await;
            again(StatusCode::UNAUTHORIZED, &e)
        }
        Err(e) => again(StatusCode::INTERNAL_SERVER_ERROR, &format!("sign-in failed: {e}")),
    }
}

/// The session of a form post that passed the checks, or the refusal.
fn checked_post(
    app: &App,
    h: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Arc<Session>, Box<Response>> {
    let Some(s) = app.session(h) else {
        return Err(Box::new(redirect("/login")));
    };
    if !from_our_pages(h) {
        return Err(Box::new(not_ours()));
    }
    if !auth::same_secret(&s.csrf, form.get("csrf").map_or("", String::as_str)) {
        return Err(Box::new(refuse(&WebError::forbidden(
            "Refused: the form's CSRF token is missing or out of date (reload the page and try again).",
        ))));
    }
    Ok(s)
}

async fn logout(
    State(app): State<Shared>,
    h: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = checked_post(&app, &h, &form) {
        return *r;
    }
    app.sessions.remove(header_str(&h, header::COOKIE));
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_owned()),
            (header::SET_COOKIE, auth::clear_cookie()),
        ],
    )
        .into_response()
}

async fn act(State(app): State<Shared>, h: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    // Read-only first: nothing a post carries can make it act.
    if app.read_only {
        return refuse(&WebError::forbidden(
            "Refused: this server is read-only (--read-only); no action is taken.",
        ));
    }
    let s = match checked_post(&app, &h, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let action = match actions::Action::parse(&form) {
        Ok(a) => a,
        Err(e) => return refuse(&WebError::bad_request(&e)),
    };
    let back = actions::back(form.get("back"));
    let session = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        with_conn(&session, |c, _| match action.perform(c) {
            Ok(f) => Ok(f),
            Err(e) => match e.as_db_error() {
                Some(d) => Ok(action.refused(d.message(), Some(d.code().code()))),
                None => Err(WebError::from(e)),
            },
        })
    })
    .await;
    let flash = match done {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => Flash {
            ok: false,
            text: e.message,
            run: None,
        },
        Err(e) => Flash {
            ok: false,
            text: format!("the action failed: {e}"),
            run: None,
        },
    };
    s.set_flash(flash);
    redirect(&back)
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/jobs", get(jobs))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(run))
        .route("/queues", get(queues))
        .route("/daemons", get(daemons))
        .route("/workers", get(workers))
        .route("/static/style.css", get(style))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/action", axum::routing::post(act))
        .layer(axum::middleware::map_response(secure_headers))
        .layer(axum::middleware::from_fn_with_state(app.clone(), host_guard))
        .with_state(app)
}

/// Serve the dashboard until killed.
pub fn serve(opts: &Options, config: Config) -> Result<(), String> {
    let mut base = config;
    base.application_name("pg_jobs web");
    // A sign-in waits for the server at most this long, not for TCP's
    // own timeout when the host does not answer.
    if base.get_connect_timeout().is_none() {
        base.connect_timeout(Duration::from_secs(10));
    }
    let target = describe(&base);
    let single = if opts.as_connection {
        let mut c = connect(&base).map_err(|e| format!("cannot connect: {}", crate::db_error(e)))?;
        let (role, database) = whoami(&mut c).map_err(crate::db_error)?;
        Some(Arc::new(Session::new(role, database, base.clone(), c)?))
    } else {
        None
    };
    let mode = match &single {
        Some(s) => format!(
            "single-role mode: everyone acts as role {} (--as-connection)",
            s.role
        ),
        None => format!("each browser signs in with a PostgreSQL role and password ({target})"),
    };
    let app = Arc::new(App {
        sessions: Sessions::new()?,
        single,
        base,
        target,
        read_only: opts.read_only,
        hosts: std::sync::OnceLock::new(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    let listen = opts.listen.clone();
    let read_only = opts.read_only;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let _ = app.hosts.set(loopback_hosts(addr));
        // The first line names the address (tests and scripts read it).
        eprintln!("pg_jobs web: serving http://{addr}/");
        if addr.ip().is_loopback() {
            eprintln!("pg_jobs web: listening on loopback only: browsers on this machine");
        } else {
            eprintln!(
                "pg_jobs web: WARNING: listening on {addr}, not loopback: anyone who reaches it can try \
                 role passwords, sent in clear; put it behind TLS or use an SSH tunnel"
            );
        }
        eprintln!(
            "pg_jobs web: {mode}{}",
            if read_only { "; read-only" } else { "" }
        );
        axum::serve(listener, router(app))
            .await
            .map_err(|e| format!("the HTTP server stopped: {e}"))
    })
}

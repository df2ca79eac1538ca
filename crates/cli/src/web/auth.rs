//! Who is looking: sign-in sessions, their signed cookies, and the checks
//! every form post passes (a per-session CSRF token and a same-origin
//! `Origin`/`Referer`).
//!
//! Terms. A *session* is one browser's sign-in: a random id, the role it
//! signed in as, that role's connection settings (password included, kept
//! in this process's memory only, to reconnect) and one open connection. The
//! *cookie* carries the id and an HMAC-SHA-256 of it under a key drawn when
//! the server starts, so a restart signs everyone out and a guessed or
//! altered cookie is refused before any lookup. The *CSRF token* is a
//! second random value per session, written into every form; a page of
//! another site can make the browser post, but cannot read the token.
//!
//! The password is checked by PostgreSQL itself: signing in is connecting.

use super::chart::ChartCache;
use hmac::{Hmac, KeyInit, Mac};
use postgres::{Client, Config};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "pg_jobs_session";
/// A session ends after this long without a request…
pub const IDLE: Duration = Duration::from_secs(60 * 60);
/// …and in any case this long after sign-in.
pub const ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);

/// `n` random bytes from the OS, as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("no random numbers from the OS: {e}"))?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Signs and checks cookie values with a key of its own.
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn random() -> Result<Signer, String> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("no random numbers from the OS: {e}"))?;
        Ok(Signer { key })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        }
    }

    /// `id.signature` for the cookie.
    pub fn sign(&self, id: &str) -> String {
        let mut m = self.mac();
        m.update(id.as_bytes());
        format!("{id}.{}", hex(&m.finalize().into_bytes()))
    }

    /// The id of a cookie value this signer signed; `None` for anything
    /// else. The comparison takes the same time however much matches.
    pub fn verify<'a>(&self, value: &'a str) -> Option<&'a str> {
        let (id, sig) = value.rsplit_once('.')?;
        let sig = unhex(sig)?;
        let mut m = self.mac();
        m.update(id.as_bytes());
        m.verify_slice(&sig).ok().map(|()| id)
    }
}

/// Equal strings, compared in time that does not depend on where they
/// differ (for the CSRF token).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `host[:port]` of an absolute http(s) URL (`Origin` or `Referer`).
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// A post comes from one of our own pages: its `Origin` (or, without one,
/// its `Referer`) names the host the browser sent it to. Browsers set both
/// themselves; a page of another site cannot make them name ours.
pub fn same_origin(host: Option<&str>, origin: Option<&str>, referer: Option<&str>) -> bool {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    match (origin, referer) {
        (Some(o), _) => authority(o) == Some(host),
        (None, Some(r)) => authority(r) == Some(host),
        (None, None) => false,
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A message for the next page this session shows (after an action's
/// redirect).
#[derive(Debug, Clone)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
    /// A run the message is about (the run an action queued), linked.
    pub run: Option<i64>,
}

/// What a session's requests take turns with: its connection and the
/// counts its charts keep.
#[derive(Default)]
pub struct Conn {
    pub client: Option<Client>,
    pub charts: ChartCache,
}

impl Drop for Conn {
    /// The blocking client closes its connection by running its own
    /// runtime, which panics on a thread of the HTTP server's runtime (where
    /// a sign-out or an expiry drops a session): close it on a thread of
    /// its own.
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

/// One signed-in browser (or, with `--as-connection`, everyone).
pub struct Session {
    pub role: String,
    pub database: String,
    /// How to connect again as this role (never printed: it holds the
    /// password).
    pub config: Config,
    pub csrf: String,
    created: Instant,
    last_seen: Mutex<Instant>,
    pub conn: Mutex<Conn>,
    pub flash: Mutex<Option<Flash>>,
}

impl Session {
    pub fn new(role: String, database: String, config: Config, client: Client) -> Result<Session, String> {
        Ok(Session {
            role,
            database,
            config,
            csrf: random_hex(32)?,
            created: Instant::now(),
            last_seen: Mutex::new(Instant::now()),
            conn: Mutex::new(Conn {
                client: Some(client),
                charts: ChartCache::default(),
            }),
            flash: Mutex::new(None),
        })
    }

    pub fn set_flash(&self, f: Flash) {
        if let Ok(mut g) = self.flash.lock() {
            *g = Some(f);
        }
    }

    pub fn take_flash(&self) -> Option<Flash> {
        self.flash.lock().ok().and_then(|mut g| g.take())
    }

    fn expired(&self, now: Instant) -> bool {
        let idle = self
            .last_seen
            .lock()
            .map(|t| now.duration_since(*t))
            .unwrap_or(IDLE);
        idle >= IDLE || now.duration_since(self.created) >= ABSOLUTE
    }
}

/// The live sessions, by id.
pub struct Sessions {
    signer: Signer,
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    pub fn new() -> Result<Sessions, String> {
        Ok(Sessions {
            signer: Signer::random()?,
            map: Mutex::new(HashMap::new()),
        })
    }

    /// Keep `s`; returns the `Set-Cookie` value that names it.
    pub fn insert(&self, s: Session) -> Result<String, String> {
        let id = random_hex(32)?;
        let mut map = self.map.lock().map_err(|_| "the session table is poisoned")?;
        map.insert(id.clone(), Arc::new(s));
        Ok(format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            self.signer.sign(&id),
            ABSOLUTE.as_secs()
        ))
    }

    /// The live session a `Cookie` header names (ending expired ones).
    pub fn find(&self, cookie_header: Option<&str>) -> Option<Arc<Session>> {
        let now = Instant::now();
        let mut map = self.map.lock().ok()?;
        // Sessions are few: sweeping them all here keeps no connection of
        // an abandoned browser open past its expiry.
        map.retain(|_, s| !s.expired(now));
        let value = cookie(cookie_header?, COOKIE)?;
        let id = self.signer.verify(value)?;
        let s = map.get(id)?.clone();
        if let Ok(mut t) = s.last_seen.lock() {
            *t = now;
        }
        Some(s)
    }

    /// Sign out the session a `Cookie` header names.
    pub fn remove(&self, cookie_header: Option<&str>) {
        let Some(value) = cookie_header.and_then(|h| cookie(h, COOKIE)) else {
            return;
        };
        if let (Some(id), Ok(mut map)) = (self.signer.verify(value), self.map.lock()) {
            map.remove(id);
        }
    }
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_cookie_verifies_and_a_changed_one_does_not() {
        let s = Signer::random().unwrap();
        let v = s.sign("abc123");
        assert_eq!(s.verify(&v), Some("abc123"));
        // Another id under the same signature, a changed signature, a
        // truncated one, another server's key, garbage.
        let sig = v.rsplit_once('.').unwrap().1;
        assert_eq!(s.verify(&format!("abc124.{sig}")), None);
        let mut bad = v.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(s.verify(&bad), None);
        assert_eq!(s.verify(&v[..v.len() - 2]), None);
        assert_eq!(Signer::random().unwrap().verify(&v), None);
        for junk in ["", ".", "abc", "abc.zz", "abc."] {
            assert_eq!(s.verify(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        let t = random_hex(32).unwrap();
        assert_eq!(t.len(), 64);
        assert!(same_secret(&t, &t.clone()));
        assert!(!same_secret(&t, &t[..63]));
        assert!(!same_secret(&t, &format!("{}x", &t[..63])));
        assert!(!same_secret("", ""), "an empty token never matches");
        assert_ne!(t, random_hex(32).unwrap());
    }

    #[test]
    fn posts_must_come_from_our_own_pages() {
        let h = Some("127.0.0.1:8080");
        assert!(same_origin(h, Some("http://127.0.0.1:8080"), None));
        assert!(same_origin(h, None, Some("http://127.0.0.1:8080/runs?x=1")));
        assert!(!same_origin(
            h,
            Some("http://evil.example"),
            Some("http://127.0.0.1:8080/")
        ));
        assert!(!same_origin(h, Some("http://127.0.0.1:8081"), None));
        assert!(!same_origin(h, Some("null"), None));
        assert!(!same_origin(h, None, None), "neither header: refused");
        assert!(!same_origin(None, Some("http://127.0.0.1:8080"), None));
        assert!(!same_origin(h, Some("http://127.0.0.1:8080.evil.example"), None));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = "a=1; pg_jobs_session=xyz.0f; b=2";
        assert_eq!(cookie(h, COOKIE), Some("xyz.0f"));
        assert_eq!(cookie(h, "b"), Some("2"));
        assert_eq!(cookie(h, "c"), None);
    }
}

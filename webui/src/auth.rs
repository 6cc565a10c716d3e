//! Passwords, the one-time setup code, sessions and login rate limiting.
//!
//! Everything here is synchronous and takes the current [`Instant`] as an argument, so the
//! expiry and rate-limit rules are tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// The shortest administrator password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest (Argon2 is fed the bytes; a cap keeps a huge password from being hashed).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why a credential operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The operating system's random source failed.
    #[error("random source unavailable")]
    Random,
    /// Argon2 refused its input (never expected with the fixed parameters).
    #[error("password hashing failed")]
    Hash,
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut buf = [0_u8; N];
    getrandom::fill(&mut buf).map_err(|_| AuthError::Random)?;
    Ok(buf)
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Equality in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The setup code's alphabet: 32 symbols without 0/O and 1/I, so a byte maps without bias.
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Symbols in a setup code (50 bits).
pub const SETUP_CODE_LEN: usize = 10;

/// A fresh one-time setup code, e.g. `K7QMZ-3RD9X`.
pub fn new_setup_code() -> Result<String, AuthError> {
    let bytes = random_bytes::<SETUP_CODE_LEN>()?;
    let mut code = String::with_capacity(SETUP_CODE_LEN + 1);
    for (i, b) in bytes.iter().enumerate() {
        if i == SETUP_CODE_LEN / 2 {
            code.push('-');
        }
        let sym = CODE_ALPHABET
            .get(usize::from(b % 32))
            .copied()
            .unwrap_or(b'2');
        code.push(char::from(sym));
    }
    Ok(code)
}

/// A typed setup code normalised: upper case, separators and spaces dropped.
pub fn normalise_setup_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Why a new password is refused (shown to the user).
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Some(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else if n > MAX_PASSWORD_CHARS {
        Some(format!(
            "the password must have at most {MAX_PASSWORD_CHARS} characters"
        ))
    } else {
        None
    }
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane; OWASP's recommendation):
/// a PHC string with its own salt and parameters. Slow on purpose: call it off the
/// async runtime (`spawn_blocking`).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = random_bytes::<16>()?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Hash)
}

/// Whether `password` matches the PHC string `hash` (a malformed hash never matches).
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// One logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    last_seen: Instant,
}

/// What a valid session carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's CSRF token.
    pub csrf: String,
}

/// Sessions held in memory (a restart logs everyone out), keyed by 256-bit random ids.
#[derive(Debug)]
pub struct SessionStore {
    sessions: HashMap<String, Session>,
    idle: Duration,
    max: usize,
}

impl SessionStore {
    /// Sessions expire after `idle` without a request; at most `max` live at once (the
    /// least recently used is dropped).
    pub fn new(idle: Duration, max: usize) -> Self {
        Self {
            sessions: HashMap::new(),
            idle,
            max: max.max(1),
        }
    }

    /// A new session: `(id, csrf token)`.
    pub fn create(&mut self, now: Instant) -> Result<(String, String), AuthError> {
        self.sessions
            .retain(|_, s| now.saturating_duration_since(s.last_seen) < self.idle);
        while self.sessions.len() >= self.max {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.sessions.remove(&k);
                }
                None => break,
            }
        }
        let id = hex(&random_bytes::<32>()?);
        let csrf = hex(&random_bytes::<32>()?);
        self.sessions.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                last_seen: now,
            },
        );
        Ok((id, csrf))
    }

    /// The session `id` if it is live; refreshes its idle timer.
    pub fn touch(&mut self, id: &str, now: Instant) -> Option<SessionInfo> {
        let idle = self.idle;
        let expired = match self.sessions.get_mut(id) {
            None => return None,
            Some(s) if now.saturating_duration_since(s.last_seen) >= idle => true,
            Some(s) => {
                s.last_seen = now;
                return Some(SessionInfo {
                    csrf: s.csrf.clone(),
                });
            }
        };
        if expired {
            self.sessions.remove(id);
        }
        None
    }

    /// End a session.
    pub fn remove(&mut self, id: &str) {
        self.sessions.remove(id);
    }

    /// Live sessions (for tests and the log).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// Failed password (or setup code) attempts allowed per client within [`RATE_WINDOW`].
pub const PER_CLIENT_FAILURES: usize = 5;
/// Failed attempts allowed from all clients together within [`RATE_WINDOW`].
pub const GLOBAL_FAILURES: usize = 20;
/// The sliding window.
pub const RATE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Sliding-window limiter on failed credential attempts, per client address and overall.
///
/// A client with [`PER_CLIENT_FAILURES`] failures in the window is refused (HTTP 429)
/// until the oldest of them leaves the window; all clients together are refused after
/// [`GLOBAL_FAILURES`], which bounds a guessing attack spread over many addresses. While
/// refused, the password is not even checked. A client whose address is unknown shares
/// one bucket.
#[derive(Debug, Default)]
pub struct RateLimiter {
    per_client: HashMap<Option<IpAddr>, VecDeque<Instant>>,
    global: VecDeque<Instant>,
}

impl RateLimiter {
    fn prune(q: &mut VecDeque<Instant>, now: Instant) {
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= RATE_WINDOW)
        {
            q.pop_front();
        }
    }

    fn wait(q: &VecDeque<Instant>, limit: usize, now: Instant) -> Option<Duration> {
        if q.len() < limit {
            return None;
        }
        // The attempt that must leave the window before another is allowed.
        let idx = q.len().saturating_sub(limit);
        q.get(idx)
            .map(|t| RATE_WINDOW.saturating_sub(now.saturating_duration_since(*t)))
    }

    /// `Some(wait)` when `client` must not try now.
    pub fn check(&mut self, client: Option<IpAddr>, now: Instant) -> Option<Duration> {
        Self::prune(&mut self.global, now);
        self.per_client.retain(|_, q| {
            Self::prune(q, now);
            !q.is_empty()
        });
        let per = self
            .per_client
            .get(&client)
            .and_then(|q| Self::wait(q, PER_CLIENT_FAILURES, now));
        let global = Self::wait(&self.global, GLOBAL_FAILURES, now);
        match (per, global) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Record a failed attempt.
    pub fn failure(&mut self, client: Option<IpAddr>, now: Instant) {
        self.per_client.entry(client).or_default().push_back(now);
        self.global.push_back(now);
    }

    /// A successful login forgets the client's failures.
    pub fn success(&mut self, client: Option<IpAddr>) {
        self.per_client.remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_codes_are_random_and_well_formed() {
        let a = new_setup_code().unwrap();
        let b = new_setup_code().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), SETUP_CODE_LEN + 1);
        let n = normalise_setup_code(&a);
        assert_eq!(n.len(), SETUP_CODE_LEN);
        assert!(n.bytes().all(|c| CODE_ALPHABET.contains(&c)));
        assert_eq!(normalise_setup_code(&a.to_lowercase().replace('-', " ")), n);
    }

    #[test]
    fn password_policy() {
        assert!(password_problem("short").is_some());
        assert!(password_problem("123456789").is_some());
        assert!(password_problem("1234567890").is_none());
        // Characters, not bytes.
        assert!(password_problem("あいうえおかきくけ").is_some());
        assert!(password_problem(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_some());
    }

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("anything", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn sessions_expire_when_idle_and_are_capped() {
        let t0 = Instant::now();
        let mut s = SessionStore::new(Duration::from_secs(60), 2);
        let (id, csrf) = s.create(t0).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        assert_eq!(
            s.touch(&id, t0 + Duration::from_secs(59)),
            Some(SessionInfo { csrf })
        );
        // Touched at 59 s: still alive at 118 s, gone at 119 s.
        assert!(s.touch(&id, t0 + Duration::from_secs(118)).is_some());
        assert!(s.touch(&id, t0 + Duration::from_secs(178)).is_none());
        assert!(s.is_empty());

        let (a, _) = s.create(t0).unwrap();
        let (b, _) = s.create(t0 + Duration::from_secs(1)).unwrap();
        let (c, _) = s.create(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.touch(&a, t0 + Duration::from_secs(3)).is_none());
        assert!(s.touch(&b, t0 + Duration::from_secs(3)).is_some());
        s.remove(&c);
        assert!(s.touch(&c, t0 + Duration::from_secs(3)).is_none());
    }

    #[test]
    fn rate_limit_per_client_and_global() {
        let t0 = Instant::now();
        let mut r = RateLimiter::default();
        let a: Option<IpAddr> = Some([192, 0, 2, 1].into());
        let b: Option<IpAddr> = Some([192, 0, 2, 2].into());
        for i in 0..PER_CLIENT_FAILURES {
            assert_eq!(r.check(a, t0), None, "attempt {i}");
            r.failure(a, t0 + Duration::from_secs(i as u64));
        }
        let wait = r.check(a, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, RATE_WINDOW - Duration::from_secs(10));
        // Another client is not affected.
        assert_eq!(r.check(b, t0 + Duration::from_secs(10)), None);
        // The oldest failure leaves the window: one more try.
        assert_eq!(r.check(a, t0 + RATE_WINDOW), None);

        // Many clients together hit the global limit.
        let mut r = RateLimiter::default();
        for i in 0..GLOBAL_FAILURES {
            let ip: IpAddr = [198, 51, 100, u8::try_from(i).unwrap()].into();
            r.failure(Some(ip), t0);
        }
        assert!(r.check(Some([203, 0, 113, 9].into()), t0).is_some());
        assert_eq!(
            r.check(Some([203, 0, 113, 9].into()), t0 + RATE_WINDOW),
            None
        );
    }
}

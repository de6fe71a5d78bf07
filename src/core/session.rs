//! The console's signed values: the session cookie (who is logged in, until
//! when, and the token every state-changing form must carry) and the OAuth
//! `state` round trip.
//!
//! A sealed value is `base64url(JSON).base64url(HMAC-SHA256(key, JSON))`:
//! readable by anyone, forgeable by no one without the key. Opening checks
//! the MAC in constant time, then the expiry. Pure: the key, the clock and
//! the random bytes are given.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A logged-in person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The forge's login, as the forge said after the OAuth exchange.
    pub login: String,
    /// Unix seconds after which the session is over.
    pub expires: u64,
    /// The token forms must echo (`csrf` field): a cross-site form cannot
    /// read it.
    pub csrf: String,
    /// The forge the person logged in with: a login is only that forge's.
    #[serde(default)]
    pub forge: Forge,
    /// The forge's id of the person (GitLab checks access by id).
    #[serde(default)]
    pub user_id: Option<u64>,
}

/// Which forge someone logged in with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    #[default]
    GitHub,
    GitLab,
}

impl Forge {
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
        }
    }
}

/// An OAuth round trip in progress: the `state` sent to the forge, and
/// where to go once logged in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub expires: u64,
    /// A path under the console's base, never a URL elsewhere.
    pub back: String,
    /// The forge the login went to: its callback takes only its own.
    #[serde(default)]
    pub forge: Forge,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
}

/// Seals a value with `key`.
pub fn seal(key: &[u8], value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).expect("sealed values serialize");
    let mut m = mac(key);
    m.update(&json);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&json),
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

/// Opens a sealed value: None when it was not sealed with `key`, is
/// malformed, or (for values with `expires`) is past `now`.
pub fn open<T: DeserializeOwned + Expiring>(key: &[u8], sealed: &str, now: u64) -> Option<T> {
    let (body, tag) = sealed.split_once('.')?;
    let json = URL_SAFE_NO_PAD.decode(body).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut m = mac(key);
    m.update(&json);
    m.verify_slice(&tag).ok()?;
    let value: T = serde_json::from_slice(&json).ok()?;
    (value.expires() > now).then_some(value)
}

/// Values that end.
pub trait Expiring {
    fn expires(&self) -> u64;
}

impl Expiring for Session {
    fn expires(&self) -> u64 {
        self.expires
    }
}

impl Expiring for Pending {
    fn expires(&self) -> u64 {
        self.expires
    }
}

/// Whether two tokens are equal, in time that does not depend on where
/// they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Random bytes as a token (hex).
pub fn token(random: &[u8]) -> String {
    hex::encode(random)
}

/// Where to go after logging in: a path under `base`, else `base` itself
/// (an open redirect would send a fresh session anywhere).
pub fn safe_back(base: &str, wanted: &str) -> String {
    let base = base.trim_end_matches('/');
    let ok = wanted.starts_with('/')
        && !wanted.starts_with("//")
        && !wanted.contains('\\')
        && !wanted.contains("/../")
        && !wanted.ends_with("/..")
        && !wanted.chars().any(char::is_control)
        && (wanted == base || wanted.starts_with(&format!("{base}/")) || base.is_empty());
    if ok {
        wanted.to_owned()
    } else if base.is_empty() {
        "/".to_owned()
    } else {
        format!("{base}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires: u64) -> Session {
        Session {
            login: "octocat".to_owned(),
            expires,
            csrf: token(&[7; 16]),
            forge: Forge::GitLab,
            user_id: Some(12),
        }
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_key_and_in_time() {
        let key = b"0123456789abcdef0123456789abcdef";
        let sealed = seal(key, &session(1_000));
        assert_eq!(open::<Session>(key, &sealed, 999), Some(session(1_000)));
        assert_eq!(open::<Session>(key, &sealed, 1_000), None, "expired");
        assert_eq!(
            open::<Session>(b"another key, just as long as it", &sealed, 0),
            None
        );
        // A login changed by hand breaks the MAC.
        let (body, tag) = sealed.split_once('.').unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(json.replace("octocat", "admin"))
        );
        assert_eq!(open::<Session>(key, &forged, 0), None);
        // Nor can the forge be switched.
        let other = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(json.replace("gitlab", "github"))
        );
        assert_eq!(open::<Session>(key, &other, 0), None);
        assert_eq!(open::<Session>(key, "garbage", 0), None);
        assert_eq!(open::<Session>(key, "a.b.c", 0), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abcd", "abcd"));
        assert!(!same_token("abcd", "abce"));
        assert!(!same_token("abcd", "abc"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn only_paths_under_the_console_come_back() {
        assert_eq!(
            safe_back("/console", "/console/acme/shop"),
            "/console/acme/shop"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/elsewhere",
            "/console/../admin",
            "/console\\x",
            "console",
        ] {
            assert_eq!(safe_back("/console", bad), "/console/", "{bad}");
        }
        assert_eq!(safe_back("", "/acme/shop"), "/acme/shop");
        assert_eq!(safe_back("", "//evil"), "/");
    }
}

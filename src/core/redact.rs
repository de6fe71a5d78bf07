//! Keeping credentials out of everything envgate prints.
//!
//! Two layers: [`mask_url`] rewrites a connection URL so its password shows
//! as `***`, and a [`Redactor`] knows every secret of the run (passwords,
//! secret-file contents) and masks any text before it leaves the process, so
//! a database error that quotes a connection string cannot leak it either.

use percent_encoding::percent_decode_str;

pub const MASK: &str = "***";

/// `postgres://app:s3cret@db/app?password=x` → `postgres://app:***@db/app?password=***`.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return mask_query(url);
    };
    let after = scheme_end + 3;
    let authority_end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    let authority = &url[after..authority_end];
    let masked_authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}:{MASK}{}", &userinfo[..colon], &authority[at..]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let rest = mask_query(&url[authority_end..]);
    format!("{}{masked_authority}{rest}", &url[..after])
}

/// Masks `password=` and `sslpassword=` values in a query string.
fn mask_query(s: &str) -> String {
    let Some(q) = s.find('?') else {
        return s.to_owned();
    };
    let (head, query) = s.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => format!("{k}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}{}{fragment}", pairs.join("&"))
}

fn is_secret_key(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "password" | "sslpassword"
    )
}

/// Every value in a connection string that may be a secret, whatever form
/// it was written in and however a driver would read it: found by value,
/// not by one parse, so a malformed string leaks no more than a good one.
///
/// - URLs: the password between `://` and the `@` that ends the user
///   information, read as RFC 3986 does (the authority ends at `/`, `?` or
///   `#`) and also up to the last `@` anywhere (a password holding `?`, `/`,
///   `#` or `@` unescaped), and the pieces of it a driver could split off
///   and show as a host or path;
/// - `password=` and `sslpassword=` in a query string or in libpq's
///   keyword/value form (`host=db password='it''s'`), quoted or not;
/// - each of the above percent-decoded too.
pub fn connection_secrets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(scheme_end) = text.find("://") {
        let after = &text[scheme_end + 3..];
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let mut userinfos = vec![];
        if let Some(at) = after[..authority_end].rfind('@') {
            userinfos.push(&after[..at]);
        }
        if let Some(at) = after.rfind('@') {
            userinfos.push(&after[..at]);
        }
        if let Some(at) = after.find('@') {
            userinfos.push(&after[..at]);
        }
        for userinfo in userinfos {
            if let Some((_, password)) = userinfo.split_once(':') {
                out.push(password.to_owned());
                out.extend(password.split(['@', '/', '?', '#']).map(str::to_owned));
            }
        }
    }
    // `user:password@host` anywhere, whatever comes before it (a scheme
    // without `//`, say).
    for (at, _) in text.match_indices('@') {
        let before = &text[..at];
        let start = before
            .rfind(|c: char| c.is_whitespace() || c == '/')
            .map_or(0, |i| i + 1);
        if let Some((_, password)) = before[start..].split_once(':') {
            out.push(password.to_owned());
        }
    }
    out.extend(keyword_values(text));
    let decoded: Vec<String> = out
        .iter()
        .flat_map(|s| {
            let plus = s.replace('+', " ");
            [s.as_str(), plus.as_str()]
                .into_iter()
                .filter_map(|v| {
                    percent_decode_str(v)
                        .decode_utf8()
                        .ok()
                        .map(|d| d.into_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

/// The values of `password=`-like keys in a query string or a libpq
/// keyword/value string: up to `&`, whitespace or the end; or, quoted with
/// `'`, up to the closing quote (`\'` and `''` escape one).
fn keyword_values(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    for key in ["sslpassword", "password"] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(key) {
            let start = from + i;
            from = start + key.len();
            let before = lower[..start].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue; // part of another key (sslpassword is found on its own)
            }
            let rest = text[from..].trim_start();
            let Some(rest) = rest.strip_prefix('=') else {
                continue;
            };
            let rest = rest.trim_start();
            let value = if let Some(quoted) = rest.strip_prefix('\'') {
                let mut v = String::new();
                let mut end = quoted.len();
                let mut chars = quoted.char_indices().peekable();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => v.extend(chars.next().map(|(_, c)| c)),
                        '\'' if chars.peek().is_some_and(|(_, c)| *c == '\'') => {
                            chars.next();
                            v.push('\'');
                        }
                        '\'' => {
                            end = i;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                // The form as written too, as it may be echoed.
                out.push(quoted[..end].to_owned());
                v
            } else {
                rest.split(|c: char| c == '&' || c.is_whitespace())
                    .next()
                    .unwrap_or("")
                    .to_owned()
            };
            out.push(value);
        }
    }
    out
}

/// The forms a secret takes once written into JSON, HTML, CSV, Markdown, a
/// SQL literal, a URL or a debug string: each is masked too.
fn variants(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or("")
        .to_owned();
    let html = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    let markdown = secret
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let mut out = vec![
        secret.to_owned(),
        json,
        html,
        markdown,
        secret.replace('"', "\"\""),
        secret.replace('\'', "''"),
        secret.escape_debug().to_string(),
        encoded,
    ];
    out.retain(|v| !v.is_empty());
    out.sort();
    out.dedup();
    out
}

/// Masks every known secret in any text, in one pass (Aho-Corasick,
/// longest match first, so a secret that contains another is masked whole).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    matcher: Option<aho_corasick::AhoCorasick>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Registers a secret, in every form it may be written (see
    /// [`variants`]). Values under 3 characters are not searched for in free
    /// text, since masking every `a` would garble the output; URLs are still
    /// masked structurally by [`mask_url`].
    pub fn add(&mut self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.chars().count() < 3 {
            return;
        }
        let before = self.secrets.len();
        for v in variants(&secret) {
            if v.chars().count() >= 3 && !self.secrets.contains(&v) {
                self.secrets.push(v);
            }
        }
        if self.secrets.len() != before {
            self.matcher = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&self.secrets)
                .ok();
        }
    }

    /// Registers every secret a connection string holds.
    pub fn add_url(&mut self, url: &str) {
        for s in connection_secrets(url) {
            self.add(s);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn redact(&self, text: &str) -> String {
        match &self.matcher {
            Some(m) if m.is_match(text) => m.replace_all(text, &vec![MASK; self.secrets.len()]),
            _ => text.to_owned(),
        }
    }

    /// The same for bytes (a request body, say).
    pub fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        match &self.matcher {
            Some(m) if m.is_match(bytes) => {
                m.replace_all_bytes(bytes, &vec![MASK.as_bytes(); self.secrets.len()])
            }
            _ => bytes.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_in_urls() {
        let cases = [
            (
                "postgres://app:s3cret@db.example.com:5432/app",
                "postgres://app:***@db.example.com:5432/app",
            ),
            (
                "postgresql://app:p%40ss@db/app?sslmode=require",
                "postgresql://app:***@db/app?sslmode=require",
            ),
            ("postgres://app@db/app", "postgres://app@db/app"),
            (
                "postgres://db/app?user=app&password=s3cret&sslmode=require",
                "postgres://db/app?user=app&password=***&sslmode=require",
            ),
            ("postgres://a:b@c@host/db", "postgres://a:***@host/db"),
            (
                "postgres://a:pw@h1:5432,h2:5433/db",
                "postgres://a:***@h1:5432,h2:5433/db",
            ),
            ("sqlite://dev.db", "sqlite://dev.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ];
        for (url, want) in cases {
            assert_eq!(mask_url(url), want, "{url}");
        }
    }

    #[test]
    fn collects_raw_and_decoded_secrets() {
        let has = |text: &str, want: &[&str]| {
            let got = connection_secrets(text);
            for w in want {
                assert!(got.iter().any(|g| g == w), "{text}: {w} not in {got:?}");
            }
        };
        has("postgres://app:p%40ss@db/app", &["p%40ss", "p@ss"]);
        has("postgres://db/app?password=hunter2", &["hunter2"]);
        assert!(connection_secrets("postgres://app@db/app").is_empty());
        // Malformed: every reading of the password.
        has(
            "postgres://app:Hunter2?secret@db/app",
            &["Hunter2?secret", "Hunter2"],
        );
        has(
            "postgres://app:Hunter2@secret@127.0.0.1:5432/app",
            &["Hunter2@secret", "Hunter2", "secret"],
        );
        has("postgres://app:a/b#c@db/app", &["a/b#c"]);
        has("postgres//app:noscheme@db/app", &["noscheme"]);
        // libpq keyword/value, quoted or not.
        has(
            "user=app password=Hunter2secret host=db",
            &["Hunter2secret"],
        );
        has(
            "host=db password = 'it''s \\ secret' user=x",
            &["it's  secret", "it''s \\ secret"],
        );
        has(
            "postgres://db/app?sslmode=require&password=a+b%21c",
            &["a b!c", "a+b!c"],
        );
    }

    #[test]
    fn redactor_masks_every_occurrence_longest_first() {
        let mut r = Redactor::new();
        r.add_url("postgres://app:hunter2@db/app");
        r.add("hunter2-and-more");
        r.add("x");
        assert_eq!(
            r.redact("auth failed for hunter2 (hunter2-and-more), x stays"),
            "auth failed for *** (***), x stays"
        );
    }
}

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

/// The secrets a URL carries: its password, raw and percent-decoded, and any
/// `password=` query values.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(scheme_end) = url.find("://") {
        let after = scheme_end + 3;
        let authority_end = url[after..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| after + i);
        let authority = &url[after..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some((_, password)) = authority[..at].split_once(':')
        {
            out.push(password.to_owned());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && is_secret_key(k)
            {
                out.push(v.to_owned());
            }
        }
    }
    let decoded: Vec<String> = out
        .iter()
        .filter_map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|d| d.into_owned())
        })
        .collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

/// Masks every known secret in any text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Registers a secret. Very short values (under 3 characters) are not
    /// searched for in free text, since masking every `a` would garble the
    /// output; URLs are still masked structurally by [`mask_url`].
    pub fn add(&mut self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.chars().count() < 3 || self.secrets.contains(&secret) {
            return;
        }
        self.secrets.push(secret);
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Registers every secret a connection URL holds.
    pub fn add_url(&mut self, url: &str) {
        for s in url_secrets(url) {
            self.add(s);
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
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
        assert_eq!(
            url_secrets("postgres://app:p%40ss@db/app"),
            ["p%40ss", "p@ss"]
        );
        assert_eq!(
            url_secrets("postgres://db/app?password=hunter2"),
            ["hunter2"]
        );
        assert!(url_secrets("postgres://app@db/app").is_empty());
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

//! Webhook authenticity: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the
//! raw body with the webhook secret) and GitLab's `X-Gitlab-Token`, both
//! compared in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// No signature header.
    Missing,
    /// Not `sha256=<64 hex digits>`.
    Malformed,
    /// The signature does not match the body and the secret.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureError::Missing => "missing X-Hub-Signature-256",
            SignatureError::Malformed => "malformed X-Hub-Signature-256",
            SignatureError::Mismatch => "X-Hub-Signature-256 does not match",
        })
    }
}

/// Checks `header` (`sha256=<hex>`) against the HMAC-SHA256 of `body`.
pub fn verify_github(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digits = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digits).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature-256` value for a body (what GitHub sends).
pub fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a GitLab delivery's token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Mismatch,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenError::Missing => "missing X-Gitlab-Token",
            TokenError::Mismatch => "X-Gitlab-Token does not match the webhook secret",
        })
    }
}

/// Checks GitLab's `X-Gitlab-Token` against the secret, in constant time
/// (for equal lengths; a length difference is not secret).
pub fn verify_gitlab(secret: &str, header: Option<&str>) -> Result<(), TokenError> {
    let given = header.ok_or(TokenError::Missing)?.as_bytes();
    let want = secret.as_bytes();
    if given.len() != want.len() {
        return Err(TokenError::Mismatch);
    }
    let diff = given
        .iter()
        .zip(want)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(TokenError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_example() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_github(secret, body), header);
        assert_eq!(verify_github(secret, body, Some(header)), Ok(()));
    }

    #[test]
    fn anything_else_is_rejected() {
        let secret = b"s3cret";
        let body = br#"{"action":"opened"}"#;
        let good = sign_github(secret, body);
        assert_eq!(
            verify_github(secret, body, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_github(secret, body, Some("sha1=abc")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_github(secret, body, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_github(secret, body, Some("sha256=abcd")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_github(b"other", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(secret, br#"{"action":"closed"}"#, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(
                secret,
                body,
                Some(&good.to_uppercase().replace("SHA256=", "sha256="))
            ),
            Ok(())
        );
    }

    #[test]
    fn gitlab_tokens() {
        assert_eq!(verify_gitlab("tok", Some("tok")), Ok(()));
        assert_eq!(
            verify_gitlab("tok", Some("tok2")),
            Err(TokenError::Mismatch)
        );
        assert_eq!(verify_gitlab("tok", Some("tak")), Err(TokenError::Mismatch));
        assert_eq!(verify_gitlab("tok", None), Err(TokenError::Missing));
        // The log and the reply name GitLab's header, not GitHub's.
        assert_eq!(TokenError::Missing.to_string(), "missing X-Gitlab-Token");
    }
}

//! What both forge clients do over HTTP: send a request and try again where
//! the forge says to, read its error message, follow its paging links.

use super::ApiError;
use reqwest::{Method, StatusCode, header};
use std::time::Duration;

/// Tries per request.
const ATTEMPTS: u32 = 4;
/// Waits shorter than this happen in place; longer ones are the queue's.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(20);

/// A response's parts.
pub struct Answer {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: bytes::Bytes,
}

/// What became of one try, for a client's metrics.
#[derive(Clone, Copy)]
pub enum Try {
    /// No answer: the connection failed or timed out.
    Transport,
    /// An answer, whatever its status.
    Answered(StatusCode),
    /// Rate limited.
    RateLimited,
    /// A 5xx.
    ServerError,
}

/// Sends the request `build` makes, trying again where the forge says to:
/// transport errors and 5xx a few times with a short backoff, rate limits
/// (`rate_limit` says how long to wait, from the status, headers and
/// message) after that wait when it is short. A longer wait, or the last
/// try failing, is a [`ApiError::Transient`] for the caller (the job queue)
/// to wait out.
pub async fn send(
    method: &Method,
    url: &url::Url,
    build: impl Fn() -> reqwest::RequestBuilder,
    rate_limit: impl Fn(StatusCode, &header::HeaderMap, &str) -> Option<Duration>,
    observe: impl Fn(Try),
) -> Result<Answer, ApiError> {
    let m = method.as_str();
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let response = match build().send().await {
            Ok(r) => r,
            Err(e) => {
                observe(Try::Transport);
                last = format!("{m} {}: {e}", url.path());
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
        };
        let status = response.status();
        observe(Try::Answered(status));
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        let message = error_message(&body);
        if let Some(wait) = rate_limit(status, &headers, &message) {
            observe(Try::RateLimited);
            last = format!("{m} {}: rate limited: {message}", url.path());
            if wait > MAX_INLINE_WAIT || attempt == ATTEMPTS {
                return Err(ApiError::Transient {
                    message: last,
                    after: wait,
                });
            }
            tokio::time::sleep(wait).await;
            continue;
        }
        if status.is_server_error() {
            observe(Try::ServerError);
            last = format!("{m} {}: {status}: {message}", url.path());
            tokio::time::sleep(backoff(attempt)).await;
            continue;
        }
        return Err(ApiError::Status {
            status: status.as_u16(),
            message: format!("{m} {}: {message}", url.path()),
        });
    }
    Err(ApiError::Transient {
        message: last,
        after: Duration::from_secs(30),
    })
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(attempt.saturating_sub(1)))
}

/// `Retry-After` in seconds, if the answer has one.
pub fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The forge's `message` (GitLab also says `error`, or an object of field
/// errors), or the start of the body.
pub fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => match (&v["message"], &v["error"]) {
            (serde_json::Value::String(s), _) | (_, serde_json::Value::String(s)) => s.clone(),
            (m, _) if !m.is_null() => m.to_string(),
            _ => v.to_string().chars().take(200).collect(),
        },
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// An OAuth authorization code exchanged at the forge's token endpoint
/// (`url`, with the `form` it wants) for the user's access token, which is
/// registered as a secret. Used once per console login, so not retried.
pub async fn oauth_exchange(url: &str, form: &[(&str, &str)]) -> Result<String, ApiError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .user_agent(concat!("envgate/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ApiError::Invalid(format!("cannot build the HTTP client: {e}")))?;
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().copied())
        .finish();
    let answer = client
        .post(url)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| ApiError::Transient {
            message: format!("{url}: {e}"),
            after: Duration::from_secs(5),
        })?;
    let status = answer.status().as_u16();
    let v: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| ApiError::Invalid(format!("{url}: {e}")))?;
    match v.get("access_token").and_then(serde_json::Value::as_str) {
        Some(t) if status == 200 => {
            crate::secrets::register(t);
            Ok(t.to_owned())
        }
        _ => Err(ApiError::Status {
            status,
            message: v
                .get("error_description")
                .or_else(|| v.get("error"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no access token")
                .to_owned(),
        }),
    }
}

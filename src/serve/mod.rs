//! `envgate serve`: the GitHub App webhook bot.
//!
//! The request path only verifies, records and enqueues: a delivery's
//! signature is checked before anything is parsed, its id and the few
//! fields its job needs are written to the control store's queue (batched:
//! one transaction for everything that arrived meanwhile), and GitHub gets
//! 202 at once. Workers (threads, each with its own control-store
//! connection) take jobs from the queue — on PostgreSQL with `SKIP LOCKED`,
//! so several replicas share the work — and retry with backoff.

pub mod config;
pub mod console;
pub mod event;
pub mod pages;
pub mod worker;

use crate::control::ControlStore;
use crate::core::webhook;
use crate::forge::github::GitHub;
use crate::jobs::JobError;
use crate::metrics::Metrics;
use crate::queue::{Enqueued, NewJob};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use config::ServeConfig;
use futures::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::Instrument;

/// The App manifest for GitHub's manifest flow: permissions and events,
/// the webhook at `<url>/webhooks/github`.
pub fn manifest(url: &str, name: &str) -> Result<String, String> {
    let base = url::Url::parse(url).map_err(|e| format!("--url {url}: {e}"))?;
    if base.scheme() != "https" {
        return Err(format!(
            "--url {url}: GitHub delivers webhooks to https:// URLs"
        ));
    }
    let hook = base
        .join("webhooks/github")
        .map_err(|e| format!("--url {url}: {e}"))?;
    let manifest = serde_json::json!({
        "name": name,
        "url": base.as_str(),
        "description": "Every migration's state in every environment, on every pull request; bundles on release tags; /promote and /rollback from comments.",
        "public": false,
        "hook_attributes": {"url": hook.as_str(), "active": true},
        "default_permissions": {
            "checks": "write",
            "contents": "write",
            "pull_requests": "write",
            "issues": "write",
            "metadata": "read",
            "members": "read"
        },
        "default_events": ["pull_request", "pull_request_review", "push", "create", "release", "issue_comment"]
    });
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&manifest).expect("json")
    ))
}

/// Attempts before a job stays failed.
const MAX_ATTEMPTS: u32 = 6;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What every part of the bot shares.
pub struct Shared {
    pub cfg: ServeConfig,
    pub github: Option<GitHub>,
    pub gitlab: Option<crate::forge::gitlab::GitLab>,
    pub metrics: Arc<Metrics>,
    /// Blobs by id, for every worker (a blob never changes).
    pub blobs: crate::jobs::remote::BlobCache,
    /// Seals audit records keyed (`ENVGATE_AUDIT_KEY`).
    pub audit_key: Option<crate::core::audit::Key>,
}

enum Intake {
    Job(NewJob, oneshot::Sender<Result<Enqueued, String>>),
    Ping(oneshot::Sender<Result<(), String>>),
}

/// When readiness was last checked, and what came of it.
type Readiness = (Instant, Result<(), String>);

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    intake: mpsc::Sender<Intake>,
    wake: Arc<Notify>,
    ready_cache: Arc<std::sync::Mutex<Option<Readiness>>>,
}

/// Runs the bot until SIGTERM or Ctrl-C.
pub fn run(cfg: ServeConfig) -> Result<(), String> {
    serve(cfg, |_| {}, shutdown_signal())
}

/// A bot running on a thread of its own (tests, benchmarks): where it
/// listens, and how to stop it.
pub struct Running {
    pub address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Running {
    /// Stops it (as SIGTERM would) and waits for its workers.
    pub fn stop(mut self) -> Result<(), String> {
        self.halt()
    }

    fn halt(&mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| "the bot panicked".to_owned())?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Starts the bot on a thread of its own; returns once it listens.
pub fn spawn(cfg: ServeConfig) -> Result<Running, String> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("envgate-serve".into())
        .spawn(move || {
            serve(
                cfg,
                move |a| {
                    let _ = ready_tx.send(a);
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
        })
        .map_err(|e| e.to_string())?;
    match ready_rx.recv() {
        Ok(address) => Ok(Running {
            address,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Err(_) => Err(thread
            .join()
            .map_err(|_| "the bot panicked".to_owned())?
            .err()
            .unwrap_or_else(|| "the bot stopped before listening".into())),
    }
}

/// Runs the bot until `shutdown` completes; `ready` hears where it listens.
fn serve(
    cfg: ServeConfig,
    ready: impl FnOnce(std::net::SocketAddr) + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let audit_key = crate::ops::memory::audit_key()?;
    let metrics = Arc::new(Metrics::default());
    let github = match &cfg.github {
        Some(g) => Some(GitHub::app(
            &g.api_url,
            g.app_id,
            &g.private_key,
            metrics.github.clone(),
        )?),
        None => None,
    };
    let gitlab = match &cfg.gitlab {
        Some(g) => Some(
            crate::forge::gitlab::GitLab::new(
                &g.api_url,
                crate::forge::gitlab::Token::Private(g.token.clone()),
            )?
            .counted(metrics.gitlab.clone()),
        ),
        None => None,
    };
    let shared = Arc::new(Shared {
        cfg,
        github,
        gitlab,
        metrics,
        blobs: crate::jobs::remote::BlobCache::default(),
        audit_key,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The queue exists before anything is accepted.
    runtime.block_on(async {
        let store = ControlStore::open(&shared.cfg.control_store)
            .await
            .map_err(|e| crate::core::redact::mask_url(&e))?;
        store.ensure_queue().await
    })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let (intake_tx, intake_rx) = mpsc::channel::<Intake>(4096);
    let writer = {
        let shared = shared.clone();
        let wake = wake.clone();
        std::thread::Builder::new()
            .name("envgate-intake".into())
            .spawn(move || local(intake_writer(shared, intake_rx, wake)))
            .map_err(|e| e.to_string())?
    };
    let mut workers = Vec::new();
    let host = hostname();
    for i in 0..shared.cfg.workers {
        let shared = shared.clone();
        let wake = wake.clone();
        let stop = stop_rx.clone();
        let name = format!("{host}:{}:{i}", std::process::id());
        workers.push(
            std::thread::Builder::new()
                .name(format!("envgate-worker-{i}"))
                .spawn(move || local(work(shared, name, wake, stop, i == 0)))
                .map_err(|e| e.to_string())?,
        );
    }
    let app = App {
        shared: shared.clone(),
        intake: intake_tx,
        wake,
        ready_cache: Arc::default(),
    };
    let result = runtime.block_on(async move {
        let router = Router::new()
            .route("/webhooks/github", post(github_webhook))
            .route("/webhooks/gitlab", post(gitlab_webhook))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .layer(DefaultBodyLimit::max(app.shared.cfg.max_body))
            .with_state(app.clone());
        let router = match console::routes(app.shared.clone()) {
            Some(pages) => router.merge(pages),
            None => router,
        };
        let listener = tokio::net::TcpListener::bind(app.shared.cfg.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", app.shared.cfg.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%address, "listening");
        ready(address);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| e.to_string())
    });
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.join();
    }
    // The intake writer ends when the last sender (the router) is gone.
    let _ = writer.join();
    result
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| whoami::hostname().ok())
        .unwrap_or_else(|| "envgate".to_owned())
}

/// Runs a future on a single-threaded runtime of this thread (control-store
/// connections are not shared between threads).
fn local(f: impl Future<Output = ()>) {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => tracing::error!("cannot start a runtime: {e}"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Writes deliveries to the queue, in batches: whatever arrived while the
/// previous batch was being written goes in the next transaction.
async fn intake_writer(shared: Arc<Shared>, mut rx: mpsc::Receiver<Intake>, wake: Arc<Notify>) {
    let mut store: Option<ControlStore> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        if store.is_none() {
            match ControlStore::open(&shared.cfg.control_store).await {
                Ok(s) => store = Some(s),
                Err(e) => tracing::error!("control store: {}", crate::core::redact::mask_url(&e)),
            }
        }
        let mut jobs = Vec::new();
        let mut replies = Vec::new();
        for m in batch {
            match m {
                Intake::Job(j, reply) => {
                    jobs.push(j);
                    replies.push(reply);
                }
                Intake::Ping(reply) => {
                    let r = match &store {
                        Some(s) => s.ping().await,
                        None => Err("the control store cannot be opened".into()),
                    };
                    let _ = reply.send(r);
                }
            }
        }
        if jobs.is_empty() {
            continue;
        }
        let result = match &store {
            Some(s) => s.enqueue(&jobs, now_ms()).await,
            None => Err("the control store cannot be opened".into()),
        };
        match result {
            Ok(outcomes) => {
                for (reply, o) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(o));
                }
                wake.notify_waiters();
            }
            Err(e) => {
                tracing::error!("cannot record deliveries: {e}");
                store = None; // reconnect next time
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn reply(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

async fn github_webhook(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let event = header("x-github-event").unwrap_or("").to_owned();
    let delivery = header("x-github-delivery").unwrap_or("").to_owned();
    let m = &app.shared.metrics;
    // Until the signature holds, the event header is anyone's text: it
    // must not mint metric labels.
    let count = |verified: bool, outcome: &str| {
        let label = match (verified, event.as_str()) {
            (false, _) => "unverified",
            (true, "") => "unknown",
            (true, e) => e,
        };
        m.delivery(label, outcome)
    };
    let Some(github) = &app.shared.cfg.github else {
        return reply(StatusCode::NOT_FOUND, "GitHub is not configured here");
    };
    // The signature first: nothing unsigned is even parsed.
    if let Err(e) =
        webhook::verify_github(&github.webhook_secret, &body, header("x-hub-signature-256"))
    {
        count(false, "rejected");
        tracing::warn!(delivery = %delivery, "webhook rejected: {e}");
        return reply(StatusCode::UNAUTHORIZED, &e.to_string());
    }
    if event.is_empty() || delivery.is_empty() {
        count(true, "malformed");
        return reply(
            StatusCode::BAD_REQUEST,
            "missing X-GitHub-Event or X-GitHub-Delivery",
        );
    }
    let work = event::classify(&event, &body);
    take(&app, delivery, event.clone(), work, &|o| count(true, o)).await
}

/// Takes a verified delivery, read into its work (`Ok(None)`: nothing to
/// do; `Err`: not the forge's payload): queues it; the answer to the forge.
async fn take(
    app: &App,
    delivery: String,
    event: String,
    work: Result<Option<event::Work>, String>,
    count: &(dyn Fn(&str) + Sync),
) -> Response {
    let span = tracing::info_span!("delivery", id = %delivery, event = %event);
    async {
        let work = match work {
            Ok(Some(w)) => w,
            Ok(None) => {
                count("ignored");
                return reply(StatusCode::ACCEPTED, "ignored");
            }
            Err(e) => {
                count("malformed");
                tracing::warn!("malformed payload: {e}");
                return reply(StatusCode::BAD_REQUEST, &e);
            }
        };
        enqueue(app, delivery, event, &work, count).await
    }
    .instrument(span)
    .await
}

/// Queues a delivery's work.
async fn enqueue(
    app: &App,
    delivery: String,
    event: String,
    work: &event::Work,
    count: &(dyn Fn(&str) + Sync),
) -> Response {
    let job = NewJob {
        delivery,
        event,
        payload: serde_json::to_string(work).expect("work serializes"),
    };
    let (tx, rx) = oneshot::channel();
    if app.intake.send(Intake::Job(job, tx)).await.is_err() {
        count("error");
        return reply(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match rx.await {
        Ok(Ok(Enqueued::New)) | Ok(Ok(Enqueued::Retried)) => {
            count("queued");
            app.wake.notify_waiters();
            reply(StatusCode::ACCEPTED, "queued")
        }
        Ok(Ok(Enqueued::Duplicate)) => {
            count("duplicate");
            reply(
                StatusCode::ACCEPTED,
                "duplicate delivery: already processed",
            )
        }
        _ => {
            count("error");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot record the delivery; the forge will show it as failed: redeliver it",
            )
        }
    }
}

async fn gitlab_webhook(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let m = &app.shared.metrics;
    let event = header("x-gitlab-event").unwrap_or("").to_owned();
    let label = format!(
        "gitlab:{}",
        event
            .trim_end_matches(" Hook")
            .to_ascii_lowercase()
            .replace(' ', "_")
    );
    let count = |verified: bool, outcome: &str| {
        let label = if verified {
            label.as_str()
        } else {
            "unverified"
        };
        m.delivery(label, outcome)
    };
    let Some(gitlab) = &app.shared.cfg.gitlab else {
        return reply(StatusCode::NOT_FOUND, "GitLab is not configured here");
    };
    // The secret first: nothing unauthenticated is even parsed.
    let secret = String::from_utf8_lossy(&gitlab.webhook_secret);
    if let Err(e) = webhook::verify_gitlab(&secret, header("x-gitlab-token")) {
        count(false, "rejected");
        tracing::warn!("GitLab webhook rejected: {e}");
        return reply(StatusCode::UNAUTHORIZED, &e.to_string());
    }
    if event.is_empty() {
        count(true, "malformed");
        return reply(StatusCode::BAD_REQUEST, "missing X-Gitlab-Event");
    }
    // Idempotency-Key (GitLab 17.4+) stays the same when GitLab retries
    // or someone resends a delivery; before it, the body's hash does.
    let delivery = match header("idempotency-key").filter(|k| !k.trim().is_empty()) {
        Some(k) => format!("gitlab:{k}"),
        None => format!("gitlab:sha256:{}", hex_sha256(&body)),
    };
    let work = event::classify_gitlab(&event, &body);
    take(&app, delivery, label.clone(), work, &|o| count(true, o)).await
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Ready when the control store answers and GitHub accepts the App's JWT
/// (checked at most every 10 seconds).
async fn readyz(State(app): State<App>) -> Response {
    if let Some((at, r)) = app.ready_cache.lock().expect("ready cache").clone()
        && at.elapsed() < Duration::from_secs(10)
    {
        return match r {
            Ok(()) => reply(StatusCode::OK, "ready"),
            Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, &e),
        };
    }
    let (tx, rx) = oneshot::channel();
    let store = match app.intake.send(Intake::Ping(tx)).await {
        Ok(()) => rx.await.unwrap_or_else(|_| Err("no answer".into())),
        Err(_) => Err("shutting down".into()),
    };
    let github = match &app.shared.github {
        None => Ok(()),
        Some(gh) => match gh.jwt() {
            Ok(jwt) => gh
                .send(reqwest::Method::GET, "app", Some(&jwt), None)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
    };
    let gitlab = match &app.shared.gitlab {
        None => Ok(()),
        Some(gl) => gl.ping().await.map_err(|e| e.to_string()),
    };
    let r = match (store, github, gitlab) {
        (Ok(()), Ok(()), Ok(())) => Ok(()),
        (Err(e), _, _) => Err(format!(
            "control store: {}",
            crate::core::redact::mask_url(&e)
        )),
        (_, Err(e), _) => Err(format!("GitHub: {e}")),
        (_, _, Err(e)) => Err(format!("GitLab: {e}")),
    };
    *app.ready_cache.lock().expect("ready cache") = Some((Instant::now(), r.clone()));
    match r {
        Ok(()) => reply(StatusCode::OK, "ready"),
        Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        app.shared.metrics.render(),
    )
        .into_response()
}

/// How long to wait before the next attempt.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(match attempts {
        0 | 1 => 5,
        2 => 30,
        3 => 120,
        4 => 600,
        _ => 1800,
    })
}

/// A worker: takes jobs until told to stop.
async fn work(
    shared: Arc<Shared>,
    name: String,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    reports_depth: bool,
) {
    let mut worker = worker::Worker {
        shared: shared.clone(),
        store: None,
        name: name.clone(),
        resuming: false,
    };
    let mut last_depth = Instant::now() - Duration::from_secs(60);
    let mut heartbeat: Option<ControlStore> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if worker.store.is_none() {
            match ControlStore::open(&shared.cfg.control_store).await {
                Ok(s) => worker.store = Some(s),
                Err(e) => {
                    tracing::error!("control store: {}", crate::core::redact::mask_url(&e));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {},
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            }
        }
        let store = worker.store.as_ref().expect("opened above");
        if reports_depth && last_depth.elapsed() > Duration::from_secs(2) {
            if let Ok(n) = store.queue_depth().await {
                shared.metrics.queue_depth.set(n);
            }
            last_depth = Instant::now();
        }
        let claimed = store
            .claim(&name, now_ms(), config::LEASE.as_millis() as i64)
            .await;
        let job = match claimed {
            Ok(Some(job)) => job,
            Ok(None) => {
                let notified = wake.notified();
                tokio::select! {
                    () = notified => {},
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {},
                    _ = stop.changed() => return,
                }
                continue;
            }
            Err(e) => {
                tracing::error!("cannot claim a job: {e}");
                worker.store = None;
                continue;
            }
        };
        let span = tracing::info_span!("job", delivery = %job.delivery, event = %job.event, attempt = job.attempts);
        let started = Instant::now();
        // While the job runs, its lease (and its named locks) are renewed
        // over a connection of their own, so a long job is never claimed
        // by a second worker.
        if heartbeat.is_none() {
            heartbeat = ControlStore::open(&shared.cfg.control_store).await.ok();
        }
        let renew = async {
            let Some(hb) = heartbeat.as_ref() else {
                return std::future::pending().await;
            };
            loop {
                tokio::time::sleep(config::LEASE / 3).await;
                let until = now_ms() + config::LEASE.as_millis() as i64;
                if let Err(e) = hb.renew(&job, &name, until).await {
                    tracing::warn!("cannot renew the job's lease: {e}");
                }
            }
        };
        worker.resuming = job.attempts > 1;
        let run = async {
            match serde_json::from_str::<event::Work>(&job.payload) {
                // A bug in one job must not take the worker with it.
                Ok(work) => match std::panic::AssertUnwindSafe(worker.run(&work))
                    .catch_unwind()
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(JobError::Bug(
                        "envgate failed on this job (it panicked; see the log)".into(),
                    )),
                },
                Err(e) => Err(JobError::Bug(format!("unreadable job: {e}"))),
            }
        }
        .instrument(span.clone());
        let outcome = tokio::select! {
            r = run => r,
            () = renew => unreachable!("the heartbeat never ends"),
        };
        // This runtime runs this one task, so the span stays its own.
        let _enter = span.enter();
        if worker.store.is_none() {
            // The job panicked holding the store: open another.
            worker.store = ControlStore::open(&shared.cfg.control_store).await.ok();
        }
        let elapsed = started.elapsed().as_secs_f64();
        shared.metrics.job_took(&job.event, elapsed);
        let Some(store) = worker.store.as_ref() else {
            continue;
        };
        if outcome.is_ok() || job.attempts >= MAX_ATTEMPTS {
            shared.metrics.delivery_took(
                &job.event,
                (now_ms() - job.received_at).max(0) as f64 / 1000.0,
            );
        }
        let (label, result) = match &outcome {
            Ok(()) => ("done", store.finish(&job, &name, now_ms()).await),
            Err(JobError::Transient(msg, after)) if job.attempts < MAX_ATTEMPTS => {
                let wait = (*after).max(backoff(job.attempts));
                tracing::warn!("will retry in {}s: {msg}", wait.as_secs());
                let at = now_ms() + wait.as_millis() as i64;
                (
                    "retried",
                    store.give_back(&job, &name, Some(at), msg, now_ms()).await,
                )
            }
            // The user's to fix: said where they look, not retried.
            Err(e @ JobError::User(_)) => {
                tracing::warn!("failed: {e}");
                (
                    "failed",
                    store
                        .give_back(&job, &name, None, &e.to_string(), now_ms())
                        .await,
                )
            }
            Err(e) => {
                tracing::error!("failed: {e}");
                (
                    "failed",
                    store
                        .give_back(&job, &name, None, &e.to_string(), now_ms())
                        .await,
                )
            }
        };
        shared.metrics.job(&job.event, label);
        if let Err(e) = result {
            tracing::error!("cannot record the job's outcome: {e}");
            worker.store = None;
        }
    }
}

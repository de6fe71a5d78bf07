//! A repository's audit trail: filtered, verified, exported.

use super::*;

/// The audit page's filters, as its form sends them (empty: no filter).
#[derive(Deserialize, Default)]
pub(super) struct AuditQuery {
    env: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// A published head (`SEQ:HASH`) the chain must hold.
    expect: Option<String>,
    /// `jsonl` or `csv`: the export instead of the page.
    format: Option<String>,
}

/// The newest records the page shows; the twin and the exports have all.
pub(super) const AUDIT_PAGE_RECORDS: usize = 500;

/// A repository's audit trail: the records of this repository the filters
/// ask for, newest first, and what checking the whole chain proved.
pub(super) async fn audit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((owner, name)): Path<(String, String)>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let here = here(&uri);
    let (_, bar, site, who) = match reader(&shared, &headers, &owner, &name, &here).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let at = now();
    let bound = |field: &str, v: &Option<String>| {
        given(v)
            .map(|t| audit::time_bound(t, at).map_err(|m| format!("{field}: {m}")))
            .transpose()
    };
    let parsed = (|| {
        let filter = audit::Filter {
            repository: None,
            environment: given(&q.env).map(str::to_owned),
            actor: given(&q.actor).map(str::to_owned),
            kind: given(&q.action).map(str::to_owned),
            since: bound("since", &q.since)?,
            until: bound("until", &q.until)?,
        };
        let expected = given(&q.expect)
            .map(|h| {
                h.parse::<audit::Head>()
                    .map_err(|m| format!("published head: {m}"))
            })
            .transpose()?;
        Ok::<_, String>((filter, expected))
    })();
    let (filter, expected) = match parsed {
        Ok(p) => p,
        Err(m) => {
            return not_understood(&shared, &headers, &bar, &m);
        }
    };
    let filtered = !filter.is_empty();
    let job_shared = shared.clone();
    let read = on_own_thread(move || {
        Box::pin(async move {
            crate::serve::pages::audit(&job_shared, &site, &who, filter, expected).await
        })
    })
    .await;
    let (records, check) = match read {
        Ok(r) => r,
        Err(e) => {
            return failure(
                &shared,
                &headers,
                &bar,
                (StatusCode::BAD_GATEWAY, "The audit trail could not be read"),
                &e,
            );
        }
    };
    let status = if check.tampered.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    match q.format.as_deref() {
        Some("jsonl") => {
            return download(
                &format!("audit-{owner}-{name}.jsonl"),
                "application/jsonl",
                render::audit_jsonl(&records, &check),
            );
        }
        Some("csv") => {
            return match render::audit_csv(&records, &check) {
                Ok(text) => download(
                    &format!("audit-{owner}-{name}.csv"),
                    "text/csv; charset=utf-8",
                    text,
                ),
                Err(e) => message(
                    &shared,
                    &headers,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The export failed",
                    &e,
                    Some(&bar),
                ),
            };
        }
        Some(other) if !other.is_empty() => {
            return not_understood(
                &shared,
                &headers,
                &bar,
                "An export is format=jsonl or format=csv.",
            );
        }
        _ => {}
    }
    if wants_json(&headers) {
        return json(
            status,
            serde_json::json!({
                "schema_version": 1,
                "repository": format!("{owner}/{name}"),
                "records": records,
                "check": check,
            })
            .to_string(),
        );
    }
    // The export links carry the page's filters.
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            [
                ("env", &q.env),
                ("actor", &q.actor),
                ("action", &q.action),
                ("since", &q.since),
                ("until", &q.until),
                ("expect", &q.expect),
            ]
            .into_iter()
            .filter_map(|(k, v)| given(v).map(|v| (k, v))),
        )
        .finish();
    let total = records.len();
    let newest: Vec<&audit::Record> = records.iter().rev().take(AUDIT_PAGE_RECORDS).collect();
    html(
        status,
        render::console_audit_html(
            &newest,
            total,
            &check,
            &render::AuditForm {
                env: given(&q.env).unwrap_or(""),
                actor: given(&q.actor).unwrap_or(""),
                action: given(&q.action).unwrap_or(""),
                since: given(&q.since).unwrap_or(""),
                until: given(&q.until).unwrap_or(""),
                expect: given(&q.expect).unwrap_or(""),
                query: &query,
                filtered,
            },
            &bar,
        ),
    )
}

/// A form field as given: None when absent or blank.
pub(super) fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

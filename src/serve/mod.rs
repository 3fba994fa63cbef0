//! `drplan serve`: the standby dashboard, the runs and their evidence, and `/metrics`, over
//! HTTP (axum on drplan's tokio). Read-only: nothing served changes a host or a run.
//!
//! One background task runs a readiness round every interval, each bounded by the interval
//! (a check that hangs is reported critical, "timed out", and the next round starts on
//! time); pages render the last round, never probe. Runs are read from the state directory
//! when a page asks (through [`Runs`], which the command line gives: it knows how runs are
//! opened). With a token, every request needs `Authorization: Bearer TOKEN`, compared in
//! constant time (as SHA-256 digests, so neither content nor length leaks by timing).
//!
//! Routes: `/` (dashboard), `/runs`, `/runs/{id}`, `/api/readiness` (the JSON of `drplan
//! check --format json`), `/api/runs`, `/api/runs/{id}`, `/api/runs/{id}/events` (the run's
//! journal records as server-sent events, while it runs), `/metrics`, `/app.js`.

pub mod charts;
pub mod metrics;
pub mod pages;
pub mod panels;

use crate::evidence::RunEvidence;
use crate::readiness::Report;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use charts::{LagChart, LagPoint};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// A future that runs on another task.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One readiness round, bounded by `budget` (`None`: stopped by a signal).
pub trait Probe: Send + Sync + 'static {
    fn round(&self, budget: Duration) -> BoxFuture<'_, Option<Report>>;
}

/// Why a run cannot be shown.
#[derive(Debug)]
pub enum RunLookup {
    NotFound(String),
    Unreadable(String),
}

/// The runs in the state directory, read-only. Blocking file I/O: called off the async
/// threads.
pub trait Runs: Send + Sync + 'static {
    /// The newest `limit` runs, newest first, and what could not be read (the state
    /// directory, or some runs), in words.
    fn list(&self, limit: usize) -> (Vec<RunEvidence>, Option<String>);
    /// One run, with its journal's records as stored (already redacted).
    fn get(&self, id: &str) -> Result<(RunEvidence, Vec<Value>), RunLookup>;
    /// Where runs are read from, for messages (a directory, or the store's URL).
    fn describe(&self) -> String;
}

/// What `drplan serve` was told.
pub struct Config {
    pub site: String,
    /// The checks file, as given.
    pub checks: String,
    pub interval: Duration,
    /// The bearer token every request must carry, if any.
    pub token: Option<String>,
}

/// How many runs the list, the metrics and the JSON show.
const RUNS_SHOWN: usize = 50;
/// How often a running run's journal is read again for its event stream.
const EVENTS_POLL: Duration = Duration::from_millis(250);

struct App {
    config: Config,
    token_digest: Option<[u8; 32]>,
    last: Mutex<Option<Report>>,
    lag: Mutex<VecDeque<LagPoint>>,
    runs: Arc<dyn Runs>,
}

impl App {
    fn refresh_secs(&self) -> u64 {
        self.config.interval.as_secs().max(1)
    }

    fn last(&self) -> Option<Report> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}

/// Serve until `stop` resolves; the probing stops with it.
pub async fn serve(
    config: Config,
    probe: impl Probe,
    runs: Arc<dyn Runs>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token_digest = config
        .token
        .as_deref()
        .map(|t| Sha256::digest(t.as_bytes()).into());
    let app = Arc::new(App {
        config,
        token_digest,
        last: Mutex::new(None),
        lag: Mutex::new(VecDeque::new()),
        runs,
    });
    let prober = tokio::spawn(probe_forever(app.clone(), probe));
    let result = axum::serve(listener, router(app))
        .with_graceful_shutdown(stop)
        .await;
    prober.abort();
    result
}

/// A readiness round every interval, each bounded by it; the last report replaces the one
/// before, whatever it says.
async fn probe_forever(app: Arc<App>, probe: impl Probe) {
    let every = app.config.interval;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(report) = probe.round(every).await else {
            return;
        };
        let point = lag_point(&report);
        if let Ok(mut lag) = app.lag.lock() {
            lag.push_back(point);
            let from = point.at_ms - charts::WINDOW_MS;
            while lag.front().is_some_and(|p| p.at_ms < from) {
                lag.pop_front();
            }
        }
        if let Ok(mut last) = app.last.lock() {
            *last = Some(report);
        }
    }
}

/// The replication lag a report saw: the largest of each kind (None when no check saw it).
pub fn lag_point(report: &Report) -> LagPoint {
    let max_of = |key: &str, standby: bool| {
        report
            .checks
            .iter()
            .filter(|c| c.check == "pg.status")
            .filter_map(|c| c.result.as_ref())
            .filter(|r| (r["in_recovery"] == Value::Bool(true)) == standby)
            .filter_map(|r| r[key].as_f64())
            .reduce(f64::max)
    };
    LagPoint {
        at_ms: report.checked_at.as_millis(),
        replay: max_of("replay_lag_bytes", true),
        loss: max_of("replica_lag_bytes", false),
    }
}

fn router(app: Arc<App>) -> Router {
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    let mut r = Router::new()
        .route("/", get(dashboard))
        .route("/runs", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/api/readiness", get(api_readiness))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{id}", get(api_run))
        .route("/api/runs/{id}/events", get(run_events))
        .route("/metrics", get(metrics_text))
        .route("/app.js", get(app_js))
        .layer(axum::middleware::from_fn_with_state(app.clone(), authorize))
        .with_state(app);
    for (name, value) in headers {
        r = r.layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                name,
                HeaderValue::from_static(value),
            ),
        );
    }
    r
}

/// With a token, a request without `Authorization: Bearer TOKEN` gets 401.
async fn authorize(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(want) = &app.token_digest {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        if !bool::from(given.ct_eq(want)) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is needed (Authorization: Bearer TOKEN)\n",
            )
                .into_response();
        }
    }
    next.run(req).await
}

#[derive(serde::Deserialize)]
struct Fragment {
    #[serde(default)]
    fragment: Option<String>,
}

impl Fragment {
    fn wanted(&self) -> bool {
        self.fragment.is_some()
    }
}

async fn dashboard(State(app): State<Arc<App>>, Query(f): Query<Fragment>) -> Html<String> {
    let report = app.last();
    let points: Vec<LagPoint> = app
        .lag
        .lock()
        .map(|l| l.iter().copied().collect())
        .unwrap_or_default();
    let now = crate::clock::Timestamp::now().as_millis();
    let page = pages::Dashboard {
        site: &app.config.site,
        checks: &app.config.checks,
        interval: crate::plan::Duration(app.config.interval).to_string(),
        refresh: app.refresh_secs(),
        report: report.as_ref(),
        chart: LagChart::draw(&points, now),
    };
    Html(pages::dashboard(&page, f.wanted()))
}

/// The runs, read off the async threads; an unreadable state directory is an empty list
/// with the reason, never an error page.
async fn list_runs(app: &Arc<App>) -> (Vec<RunEvidence>, Option<String>) {
    let runs = app.runs.clone();
    tokio::task::spawn_blocking(move || runs.list(RUNS_SHOWN))
        .await
        .unwrap_or_else(|e| (Vec::new(), Some(format!("listing the runs failed: {e}"))))
}

async fn get_run(app: &Arc<App>, id: String) -> Result<(RunEvidence, Vec<Value>), Response> {
    let runs = app.runs.clone();
    match tokio::task::spawn_blocking(move || runs.get(&id)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(RunLookup::NotFound(why))) => Err((StatusCode::NOT_FOUND, why).into_response()),
        Ok(Err(RunLookup::Unreadable(why))) => {
            Err((StatusCode::UNPROCESSABLE_ENTITY, why).into_response())
        }
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()),
    }
}

async fn runs_page(State(app): State<Arc<App>>, Query(f): Query<Fragment>) -> Html<String> {
    let (list, error) = list_runs(&app).await;
    Html(pages::runs(
        &list,
        error.as_deref(),
        &app.runs.describe(),
        app.refresh_secs(),
        f.wanted(),
    ))
}

async fn run_page(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(f): Query<Fragment>,
) -> Response {
    match get_run(&app, id).await {
        Ok((e, _)) => Html(pages::run(&e, app.refresh_secs(), f.wanted(), false)).into_response(),
        Err(r) => r,
    }
}

async fn api_readiness(State(app): State<Arc<App>>) -> Response {
    match app.last() {
        Some(r) => Json(r).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, app.refresh_secs().to_string())],
            "the first round of checks is still running\n",
        )
            .into_response(),
    }
}

async fn api_runs(State(app): State<Arc<App>>) -> Json<Value> {
    let (list, error) = list_runs(&app).await;
    Json(serde_json::json!({ "runs": list, "error": error }))
}

async fn api_run(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match get_run(&app, id).await {
        Ok((e, _)) => Json(e).into_response(),
        Err(r) => r,
    }
}

/// The run's journal records as server-sent events: those already written, then each new
/// one as it is written, until the run is no longer running (then an `end` event).
async fn run_events(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    if let Err(r) = get_run(&app, id.clone()).await {
        return r;
    }
    let stream = journal_events(app, id);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn journal_events(
    app: Arc<App>,
    id: String,
) -> impl futures_core::Stream<Item = Result<Event, std::convert::Infallible>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            let Ok((e, records)) = get_run(&app, id.clone()).await else {
                return;
            };
            for r in records.iter().skip(sent) {
                let event = Event::default().data(r.to_string());
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            sent = records.len();
            if !e.live {
                let _ = tx
                    .send(Event::default().event("end").data(e.status_word))
                    .await;
                return;
            }
            tokio::time::sleep(EVENTS_POLL).await;
        }
    });
    ReceiverStream(rx)
}

/// A channel's receiving end as a stream of `Ok` items.
struct ReceiverStream(tokio::sync::mpsc::Receiver<Event>);

impl futures_core::Stream for ReceiverStream {
    type Item = Result<Event, std::convert::Infallible>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let (list, _) = list_runs(&app).await;
    let body = metrics::render(app.last().as_ref(), &list);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::APP_JS,
    )
        .into_response()
}

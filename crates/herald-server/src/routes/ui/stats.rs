//! `GET /ui/stats`: the hub's statistics as an event stream, for the
//! dashboard: the hub dogfooding its own protocol.
//!
//! Every second (and once at once) an event of type `stats` whose data is
//! one JSON document ([`document`]): the counters of `/metrics` (totals
//! since start; the dashboard turns two documents into rates), the publish
//! latency histogram's buckets, and a few settings. Between them the hub's
//! heartbeat comments pass through as on any stream.
//!
//! Only for the admin grant ([`crate::auth::is_admin`]): no token is a
//! 401, a token without the grant a 403, both with the usual `Bearer`
//! challenge, decided from the headers before anything is held. So an
//! anonymous client can make the hub do no more than for any refused
//! request: read a head, and check at most one token signature per key.
//!
//! What a viewer costs, and what bounds it:
//!
//! - The stream holds a subscription slot (`max_subscriptions_per_ip`,
//!   `max_subscriptions`, so it is refused with 429 past them like any
//!   subscription) and a hub subscription to the admin topic, which lies
//!   in the reserved namespace: no publish can reach it, but the hub's
//!   heartbeat, shutdown (`retry:` then the end) and its counting of the
//!   stream among `herald_subscribers` come with it for free. The viewer
//!   shows up in the subscriber count it reads, as one subscriber.
//! - A document is computed per viewer and per second: a few dozen
//!   atomic loads and about a kilobyte of JSON. A timer shared by all
//!   viewers was rejected: it would need a task that lives while anyone
//!   watches, to save microseconds for a handful of operators.
//! - The store's bounds (its size in the document) are not read per
//!   viewer: each tick asks the hub's health probe
//!   ([`Hub::bounds`]), which reads the store at most once a second
//!   however many viewers and health checks ask, and the document is
//!   built, without waiting on anything, once that answer is in (from
//!   [`Hub::last_bounds`]). A store that does not answer delays the
//!   document by the probe's timeout (2 s) at most, and then it shows
//!   the last bounds read, with their time.
//! - A viewer that stops reading costs nothing more: the body is polled
//!   only when the connection can take bytes, and missed ticks are
//!   skipped, not queued.
//! - The stream ends when the token expires, like any event stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use herald_hub::matcher::{Matcher, MatcherKind};
use herald_hub::{Hub, SubscribeRequest};
use herald_proto::{Encoder, Event};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use serde_json::{json, Value};
use tokio::time::{Interval, MissedTickBehavior};

use crate::auth::{self, AuthError};
use crate::metrics::Metrics;
use crate::routes::form_pairs;
use crate::routes::subscribe::{stream_headers, StreamConnection};
use crate::sse::EventStreamBody;
use crate::{ApiError, AppState, ServerConfig};

/// How often a document is sent.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The SSE event type of a statistics document.
pub const EVENT_TYPE: &str = "stats";

/// `GET /ui/stats`.
pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match open(state, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn open(state: AppState, request: Request) -> Result<Response, ApiError> {
    let StreamConnection { peer, on_lag, .. } = StreamConnection::of(&request);
    let pairs = form_pairs(request.uri().query().unwrap_or("").as_bytes())?;
    let presented = auth::extract_token(request.headers(), &pairs, &state.config.auth)?
        .ok_or_else(AuthError::missing_token)?;
    let claims = state.auth.authenticate(&presented.token)?;
    let hub_url = state.hub.url();
    if !auth::is_admin(&claims.grants, hub_url) {
        return Err(AuthError::insufficient_scope().into());
    }

    let guard = state.subscriptions.acquire(peer)?;
    let topic = auth::admin_topic(hub_url);
    let matcher = Matcher::new(MatcherKind::Exact, &topic, hub_url)
        .map_err(|err| ApiError::Unavailable(format!("the admin topic {topic:?}: {err}")))?;
    let subscription = state
        .hub
        .subscribe(SubscribeRequest {
            matchers: vec![matcher],
            grants: Some(claims.grants),
            last_event_id: None,
            on_lag,
            direct: None,
        })
        .await?;

    let body = StatsBody::new(
        EventStreamBody::new(
            Encoder::retry(state.config.retry_ms),
            subscription,
            claims.expires_at,
            state.metrics.bytes_written(),
            Some(guard),
        ),
        Source {
            hub: state.hub.clone(),
            metrics: state.metrics.clone(),
            config: Arc::clone(&state.config),
        },
    );
    let mut response = Response::new(axum::body::Body::new(body));
    *response.status_mut() = StatusCode::OK;
    stream_headers(&mut response, None, false);
    Ok(response)
}

/// What a document is read from.
struct Source {
    hub: Hub,
    metrics: Metrics,
    config: Arc<ServerConfig>,
}

/// A refresh of the store's bounds in flight.
type Refresh = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Source {
    /// Refreshes the hub's last known bounds of the store, through the
    /// health probe's once-a-second limit; its answer (or failure) is read
    /// from [`Hub::last_bounds`] by the next document.
    fn refresh(&self) -> Refresh {
        let hub = self.hub.clone();
        Box::pin(async move {
            // A failed probe leaves the last good bounds, with their time.
            let _ = hub.bounds().await;
        })
    }

    /// The `stats` event, encoded.
    fn frame(&self) -> Option<Bytes> {
        let data = document(&self.hub, &self.metrics, &self.config).to_string();
        let event = Event::new(data).with_type(EVENT_TYPE).ok()?;
        Some(Encoder::encode(&event))
    }
}

/// The statistics document, as of now. Counters are totals since the hub
/// started (rates are the difference between two documents over the
/// difference of their `time`); gauges are values now. docs/ui.md lists
/// every field.
pub(crate) fn document(hub: &Hub, metrics: &Metrics, config: &ServerConfig) -> Value {
    let stats = hub.stats();
    let http = metrics.counts();
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let ended = stats.disconnects;
    let buckets: Vec<Value> = http
        .publish_buckets
        .iter()
        // JSON has no infinity: the last bucket's bound is `null`.
        .map(|&(le, count)| json!([le.is_finite().then_some(le), count]))
        .collect();
    let hub_config = hub.config();
    json!({
        "time": time_ms,
        "version": env!("CARGO_PKG_VERSION"),
        "hub": hub.url().as_str(),
        "connections": http.connections_open,
        "subscribers": stats.subscribers,
        "subscriptions_total": stats.subscriptions_total,
        "published_total": stats.published,
        "delivered_total": stats.delivered,
        "bytes_written_total": http.bytes_written,
        "gaps_total": stats.gaps,
        "lagged_total": stats.lagged,
        "disconnects_total": {
            "client_gone": ended.client_gone,
            "lagging": ended.lagged,
            "token_expired": ended.expired,
            "shutdown": ended.shutdown,
            "resync": ended.resync,
        },
        "store_errors_total": {
            "append": http.store_errors_append,
            "read": http.store_errors_read + stats.replay_errors,
            "follow": stats.follow_retries,
        },
        "publish_duration_seconds": {
            "count": http.publishes_timed,
            "sum": http.publish_seconds,
            "buckets": buckets,
        },
        "limits": {
            "max_subscriptions": config.max_subscriptions,
            "max_subscriptions_per_ip": config.max_subscriptions_per_ip,
            "max_connections": config.max_connections,
            "max_connections_per_ip": config.max_connections_per_ip,
            "max_pending_bytes": hub_config.max_pending_bytes,
            "heartbeat_secs": hub_config.heartbeat.map(|every| every.as_secs()),
        },
        "store": store(hub, time_ms),
    })
}

/// The `store` object: the retained range as the hub last read it, and the
/// retention the hub applies.
fn store(hub: &Hub, time_ms: u64) -> Value {
    let retention = &hub.config().retention;
    let retention = json!({
        "max_events": retention.max_events,
        "max_age_secs": retention.max_age.map(|age| age.as_secs()),
    });
    let Some((bounds, read_at)) = hub.last_bounds() else {
        return json!({
            "oldest": null, "head": null, "events": null, "as_of": null,
            "retention": retention,
        });
    };
    let head = bounds.head.get();
    // Cursors are not promised to be dense (`herald_store::Cursor`), so
    // this is the span of retained cursors: the count where the backend
    // hands them out without gaps, an upper bound where it skipped some
    // (docs/ui.md says which). Counting records would be a second store
    // read, on a disk store a scan; the span costs nothing.
    let events = bounds
        .oldest
        .map_or(0, |oldest| head.saturating_sub(oldest.get()) + 1);
    let age_ms = u64::try_from(read_at.elapsed().as_millis()).unwrap_or(u64::MAX);
    json!({
        "oldest": bounds.oldest.map(|oldest| oldest.get()),
        "head": head,
        "events": events,
        "as_of": time_ms.saturating_sub(age_ms),
        "retention": retention,
    })
}

/// The body of one statistics stream: an event stream like any other (its
/// `retry:` hint, the hub's heartbeats and last words, its end when the
/// token expires or the hub shuts down), with a document every tick.
struct StatsBody {
    stream: EventStreamBody,
    ticks: Interval,
    /// The store-bounds refresh started by the last tick; its document is
    /// sent when it is done.
    refresh: Option<Refresh>,
    source: Source,
    /// `herald_bytes_written_total`, for the documents (`stream` counts its
    /// own frames).
    written: Counter,
}

impl StatsBody {
    fn new(stream: EventStreamBody, source: Source) -> Self {
        // The first tick is at once: the dashboard has data on connect.
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        StatsBody {
            stream,
            ticks,
            refresh: None,
            written: source.metrics.bytes_written(),
            source,
        }
    }

    /// The next document: a tick starts a refresh of the store's bounds,
    /// and the document follows once it is done. Ticks that pass
    /// meanwhile are skipped.
    fn poll_document(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        loop {
            if let Some(refresh) = &mut self.refresh {
                if refresh.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.refresh = None;
                if let Some(frame) = self.source.frame() {
                    return Poll::Ready(frame);
                }
            }
            if self.ticks.poll_tick(cx).is_pending() {
                return Poll::Pending;
            }
            self.refresh = Some(self.source.refresh());
        }
    }
}

impl Body for StatsBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.stream).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        this.poll_document(cx).map(|document| {
            this.written.inc_by(document.len() as u64);
            Some(Ok(Frame::data(document)))
        })
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

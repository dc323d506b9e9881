//! Streaming publish: `POST /.well-known/mercure?topic=…` whose body is a
//! stream of events (`text/event-stream`, or `application/x-ndjson`), each
//! published as it arrives, in order, with its own id.
//!
//! One request can carry thousands of events over minutes (an AI model's
//! tokens, a log tail) without a round trip per event. The topics and
//! `private` come from the query string and hold for every event; the
//! token must grant `publish` on the topics, as for a single publish, and
//! is checked before a byte of the body is read.
//!
//! Events are stored in batches: while one batch is being appended (one
//! transaction, one fsync on the disk store), the events that arrive meanwhile
//! gather into the next. Only one batch is in flight, so the order is the
//! body's; a batch is acknowledged whole (its events' ids go out, for
//! NDJSON, as it is).
//!
//! What a publisher can make the hub hold is bounded: one event at most
//! `max_body_bytes` (the decoder refuses a longer one), events waiting to
//! be stored at most [`MAX_PENDING_BYTES`] (the body is not read further
//! meanwhile: TCP pushes back), at most `max_stream_events_per_sec` events
//! a second (the body is read more slowly past it), and at most
//! `body_timeout_secs` between two chunks of the body. A token that
//! expires mid-stream ends it: the events before its `exp` are published,
//! the rest refused.
//!
//! The answer, for `text/event-stream`, comes at the end: `200` with
//! `{"published": N, "first_id": …, "last_id": …}`, or the status of what
//! stopped the stream (400, 401, 408, 409, 413, 503) with the same fields
//! and an `"error"`. A body that ends inside an event publishes the
//! complete events and says `"incomplete": true` (the standard drops such
//! an event; so does the hub). For NDJSON the answer streams: one line
//! `{"id": …}` per event as it is stored, then the same summary line.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use herald_hub::matcher::Topic;
use herald_hub::{PublishError, Published, Update, ValidUpdate};
use herald_proto::{Decoder, Frame, Limits};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt as _;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::auth::AuthError;
use crate::metrics::StoreOp;
use crate::routes::publish::Publisher;
use crate::{ApiError, AppState};

/// Events waiting to be stored, in bytes of data, before the hub stops
/// reading the body until the batch in flight is stored.
pub const MAX_PENDING_BYTES: usize = 1 << 20;
/// Events in one batch, at most.
const MAX_BATCH_EVENTS: usize = 4096;

/// The body formats a streaming publish takes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/event-stream`: the SSE format, as a hub sends it.
    EventStream,
    /// `application/x-ndjson`: one JSON object per line.
    Ndjson,
}

impl Format {
    /// The streaming format a request's `Content-Type` names, if any.
    pub(crate) fn of(headers: &HeaderMap) -> Option<Format> {
        let essence = headers
            .get(header::CONTENT_TYPE)?
            .to_str()
            .ok()?
            .split(';')
            .next()?
            .trim();
        if essence.eq_ignore_ascii_case("text/event-stream") {
            Some(Format::EventStream)
        } else if essence.eq_ignore_ascii_case("application/x-ndjson") {
            Some(Format::Ndjson)
        } else {
            None
        }
    }
}

/// Runs a streaming publish whose headers were read: `publisher` is who
/// they name (or why none may publish), `query` the query string's pairs.
pub(crate) async fn publish(
    state: AppState,
    format: Format,
    query: Vec<(String, String)>,
    publisher: Result<Publisher, ApiError>,
    body: Body,
) -> Result<Response, ApiError> {
    let publisher = publisher?;
    let mut topics = Vec::new();
    let mut private = false;
    for (name, value) in query {
        match name.as_str() {
            "topic" => topics.push(value),
            "private" => private = true,
            _ => {}
        }
    }
    if topics.is_empty() {
        return Err(ApiError::BadRequest(
            "a streaming publish names its topics in the query string: ?topic=…".into(),
        ));
    }
    // The topics' rules and the grants, once, before the body.
    let probe = state.hub.validate(Update {
        topics: topics.clone(),
        private,
        ..Update::default()
    })?;
    let expires_at = match &publisher {
        Publisher::Token(claims) => {
            let base = state.hub.url();
            let named: Vec<Topic<'_>> =
                probe.topics().iter().map(|t| Topic::new(t, base)).collect();
            if !claims.grants.may_publish_all(&named) {
                return Err(AuthError::insufficient_scope().into());
            }
            claims.expires_at
        }
        Publisher::Anonymous => None,
    };
    let pump = Pump {
        events: Events::new(format, state.config.max_body_bytes),
        template: Template { topics, private },
        expires_at,
        rate: state.config.max_stream_events_per_sec,
        state,
    };
    match format {
        Format::EventStream => {
            let (summary, end) = pump.run(body, None).await;
            Ok(summary.response(end))
        }
        Format::Ndjson => {
            // The answer streams while the body is read: the ids go out as
            // their batches are stored.
            // One message per stored batch: a client that stops reading
            // its answer stops the body being read (the pump waits for
            // room), so no id is ever dropped and nothing piles up.
            let (lines, receiver) = mpsc::channel::<Bytes>(4);
            tokio::spawn(async move {
                let (summary, end) = pump.run(body, Some(&lines)).await;
                let _ = lines.send(summary.line(&end)).await;
            });
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                let line = receiver.recv().await?;
                Some((Ok::<_, std::convert::Infallible>(line), receiver))
            });
            Ok((
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                )],
                Body::from_stream(stream),
            )
                .into_response())
        }
    }
}

/// What every event of the stream shares.
struct Template {
    topics: Vec<String>,
    private: bool,
}

/// Reads the body, publishes its events batch by batch.
struct Pump {
    state: AppState,
    events: Events,
    template: Template,
    expires_at: Option<SystemTime>,
    /// Events a second; 0 is unlimited.
    rate: u32,
}

/// How a streaming publish ended.
enum End {
    /// The body ended after a complete event (or none).
    Complete,
    /// The body ended inside an event, which was dropped.
    Incomplete,
    /// The token expired: what came after was refused.
    Expired,
    /// Something stopped it: what, as the response says.
    Failed(ApiError),
}

/// What was published.
#[derive(Default)]
struct Summary {
    published: u64,
    first_id: Option<Arc<str>>,
    last_id: Option<Arc<str>>,
}

impl Pump {
    /// Publishes the body's events; with `acks`, sends each stored batch's
    /// ids there (NDJSON lines), waiting for room.
    async fn run(mut self, mut body: Body, acks: Option<&mpsc::Sender<Bytes>>) -> (Summary, End) {
        let mut summary = Summary::default();
        let mut pending: Vec<(ValidUpdate, Instant)> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut in_flight: Option<BoxFuture<'static, Result<Vec<Published>, PublishError>>> = None;
        let mut arrivals: Vec<Instant> = Vec::new();
        let mut body_done = false;
        // What ended the body early (a bad event, a quiet publisher): the
        // events before it are still stored, then this is the answer.
        let mut stop: Option<End> = None;
        let idle = self.state.config.body_timeout();
        let started = Instant::now();
        let mut read = 0u64;
        let end = loop {
            if in_flight.is_none() && !pending.is_empty() {
                if self.expired() {
                    break End::Expired;
                }
                let batch: Vec<(ValidUpdate, Instant)> = if pending.len() > MAX_BATCH_EVENTS {
                    pending.drain(..MAX_BATCH_EVENTS).collect()
                } else {
                    std::mem::take(&mut pending)
                };
                pending_bytes = pending.iter().map(|(u, _)| u.as_update().data.len()).sum();
                let (updates, times): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                arrivals = times;
                let hub = self.state.hub.clone();
                in_flight = Some(Box::pin(async move { hub.publish_batch(updates).await }));
            }
            if in_flight.is_none() && body_done {
                if let Some(stop) = stop.take() {
                    break stop;
                }
                break if self.events.holds_unfinished_event() {
                    End::Incomplete
                } else {
                    End::Complete
                };
            }
            // Past the rate, the body waits: TCP pushes back.
            let paced = match self.rate {
                0 => None,
                rate => Some(started + Duration::from_secs_f64(read as f64 / f64::from(rate))),
            };
            let ahead = paced.is_some_and(|at| at > Instant::now());
            let can_read = !body_done && !ahead && pending_bytes < MAX_PENDING_BYTES;
            tokio::select! {
                stored = async { in_flight.as_mut().expect("in flight").await }, if in_flight.is_some() => {
                    in_flight = None;
                    match stored {
                        Ok(published) => {
                            self.stored(&published, &arrivals, &mut summary, acks).await;
                        }
                        Err(err) => {
                            if let PublishError::Store(_) = err {
                                self.state.metrics.store_failed(StoreOp::Append);
                            }
                            break End::Failed(err.into());
                        }
                    }
                }
                () = tokio::time::sleep_until(paced.unwrap_or_else(Instant::now).into()), if ahead && !body_done => {}
                frame = tokio::time::timeout(idle, body.frame()), if can_read => match frame {
                    Err(_) => {
                        body_done = true;
                        stop = Some(End::Failed(ApiError::Timeout(format!(
                            "no more of the body within {}s (body_timeout_secs; a comment line keeps a quiet stream going)",
                            idle.as_secs()
                        ))));
                    }
                    Ok(None) => body_done = true,
                    Ok(Some(Err(err))) => {
                        // The client went away mid-body: what was complete
                        // is published; nobody is left to tell.
                        tracing::info!("a streaming publish was cut off: {err}");
                        body_done = true;
                    }
                    Ok(Some(Ok(frame))) => {
                        let Ok(data) = frame.into_data() else { continue };
                        let now = Instant::now();
                        let (drafts, bad) = self.events.feed(&data);
                        let mut failed = bad;
                        for draft in drafts {
                            read += 1;
                            match self.state.hub.validate(self.template.update(draft)) {
                                Ok(valid) => {
                                    pending_bytes += valid.as_update().data.len();
                                    pending.push((valid, now));
                                }
                                Err(err) => {
                                    failed = Some(ApiError::from(err));
                                    break;
                                }
                            }
                        }
                        if let Some(err) = failed {
                            body_done = true;
                            stop = Some(End::Failed(err));
                        }
                    }
                },
            }
        };
        // A batch handed to the store may be stored whatever happens to
        // this request: wait for it, so the answer counts what was. What
        // still waited is not published.
        if let Some(batch) = in_flight {
            if let Ok(published) = batch.await {
                self.stored(&published, &arrivals, &mut summary, acks).await;
            }
        }
        (summary, end)
    }

    /// Counts a stored batch, and sends its ids to `acks`.
    async fn stored(
        &self,
        published: &[Published],
        arrivals: &[Instant],
        summary: &mut Summary,
        acks: Option<&mpsc::Sender<Bytes>>,
    ) {
        let mut lines = String::new();
        for (one, arrived) in published.iter().zip(arrivals) {
            self.state.metrics.publish_acknowledged(*arrived);
            summary.add(one);
            if acks.is_some() {
                lines.push_str(&json!({ "id": &*one.id }).to_string());
                lines.push('\n');
            }
        }
        if let Some(acks) = acks {
            // Gone: the client stopped reading its answer; the events are
            // stored all the same.
            let _ = acks.send(Bytes::from(lines)).await;
        }
    }

    fn expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= SystemTime::now())
    }
}

impl Template {
    fn update(&self, draft: Draft) -> Update {
        Update {
            topics: self.topics.clone(),
            private: self.private,
            data: draft.data,
            id: draft.id,
            event_type: draft.event_type,
            retry: draft.retry,
        }
    }
}

impl Summary {
    fn add(&mut self, published: &Published) {
        self.published += 1;
        if self.first_id.is_none() {
            self.first_id = Some(Arc::clone(&published.id));
        }
        self.last_id = Some(Arc::clone(&published.id));
    }

    fn json(&self, end: &End) -> serde_json::Value {
        let mut summary = json!({
            "published": self.published,
            "first_id": self.first_id.as_deref(),
            "last_id": self.last_id.as_deref(),
        });
        match end {
            End::Complete => {}
            End::Incomplete => {
                summary["incomplete"] = json!(true);
                summary["note"] =
                    json!("the body ended inside an event (no blank line after it): that event was dropped");
            }
            End::Expired => {
                summary["status"] = json!(401);
                summary["error"] = json!(
                    "the token expired mid-stream: the events after its exp were refused; send them again with a fresh token"
                );
            }
            End::Failed(err) => {
                // The NDJSON answer's status was 200 before this was known:
                // the line says what the status would have been.
                summary["status"] = json!(err.status().as_u16());
                summary["error"] = json!(err.to_string());
            }
        }
        summary
    }

    /// The NDJSON stream's last line.
    fn line(&self, end: &End) -> Bytes {
        Bytes::from(format!("{}\n", self.json(end)))
    }

    /// The answer to an event-stream body: 200, or the error's status and
    /// headers (a challenge, a `Retry-After`), with the summary as JSON.
    fn response(&self, end: End) -> Response {
        let body = format!("{}\n", self.json(&end));
        let mut response = match end {
            End::Expired => ApiError::from(AuthError::invalid_token()).into_response(),
            End::Failed(err) => err.into_response(),
            End::Complete | End::Incomplete => StatusCode::OK.into_response(),
        };
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.headers_mut().remove(header::CONTENT_LENGTH);
        *response.body_mut() = Body::from(body);
        response
    }
}

/// One event of the body, before the template makes it an update.
struct Draft {
    data: String,
    id: Option<String>,
    event_type: Option<String>,
    retry: Option<u64>,
}

/// The body's events, in either format.
enum Events {
    EventStream {
        decoder: Decoder,
        /// The decoder's last event id after the previous event: an event
        /// whose id differs had an `id:` field of its own.
        last_id: String,
        /// A `retry:` line, for the next event.
        retry: Option<u64>,
    },
    Ndjson {
        /// The start of a line not ended yet.
        line: BytesMut,
        max_line: usize,
    },
}

/// An NDJSON line: the JSON form of a publish, without the topics.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEvent {
    /// A string is the data as is; any other JSON value, serialized.
    data: serde_json::Value,
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    retry: Option<u64>,
}

impl Events {
    fn new(format: Format, max_event: usize) -> Self {
        match format {
            Format::EventStream => Events::EventStream {
                decoder: Decoder::with_limits(Limits {
                    max_line: max_event,
                    max_event,
                }),
                last_id: String::new(),
                retry: None,
            },
            Format::Ndjson => Events::Ndjson {
                line: BytesMut::new(),
                max_line: max_event,
            },
        }
    }

    /// The events `chunk` completes, and what was wrong with the rest of
    /// it, if anything (the events before a bad one are still good).
    fn feed(&mut self, chunk: &[u8]) -> (Vec<Draft>, Option<ApiError>) {
        let mut drafts = Vec::new();
        let error = self.feed_into(chunk, &mut drafts).err();
        (drafts, error)
    }

    fn feed_into(&mut self, chunk: &[u8], drafts: &mut Vec<Draft>) -> Result<(), ApiError> {
        match self {
            Events::EventStream {
                decoder,
                last_id,
                retry,
            } => {
                let fed = decoder.feed(chunk);
                while let Some(frame) = decoder.next_frame() {
                    match frame {
                        Frame::Event(event) => {
                            let own_id = event.last_event_id() != last_id.as_str()
                                && !event.last_event_id().is_empty();
                            let id = own_id.then(|| event.last_event_id().to_owned());
                            last_id.clear();
                            last_id.push_str(event.last_event_id());
                            let event_type = (event.event_type() != "message")
                                .then(|| event.event_type().to_owned());
                            drafts.push(Draft {
                                data: event.into_data(),
                                id,
                                event_type,
                                retry: retry.take(),
                            });
                        }
                        Frame::Retry(every) => {
                            *retry = Some(u64::try_from(every.as_millis()).unwrap_or(u64::MAX));
                        }
                        // Comments (a publisher's keep-alive) carry nothing.
                        _ => {}
                    }
                }
                fed.map_err(|err| ApiError::TooLarge(format!("an event of the body: {err}")))?;
            }
            Events::Ndjson { line, max_line } => {
                let mut rest = chunk;
                while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                    let (head, tail) = rest.split_at(end);
                    rest = &tail[1..];
                    if line.len() + head.len() > *max_line {
                        return Err(too_long_line(*max_line));
                    }
                    line.extend_from_slice(head);
                    let whole = line.split().freeze();
                    if let Some(draft) = ndjson_event(&whole)? {
                        drafts.push(draft);
                    }
                }
                if line.len() + rest.len() > *max_line {
                    return Err(too_long_line(*max_line));
                }
                line.extend_from_slice(rest);
            }
        }
        Ok(())
    }

    fn holds_unfinished_event(&self) -> bool {
        match self {
            Events::EventStream { decoder, .. } => decoder.holds_unfinished_event(),
            Events::Ndjson { line, .. } => !line.iter().all(u8::is_ascii_whitespace),
        }
    }
}

fn too_long_line(max: usize) -> ApiError {
    ApiError::TooLarge(format!("an NDJSON line over {max} bytes (max_body_bytes)"))
}

/// The event one NDJSON line holds; `None` for a blank line.
fn ndjson_event(line: &[u8]) -> Result<Option<Draft>, ApiError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let event: JsonEvent = serde_json::from_slice(line).map_err(|err| {
        ApiError::BadRequest(format!(
            "an NDJSON line is not {{\"data\": …, \"id\"?, \"type\"?, \"retry\"?}}: {err}"
        ))
    })?;
    let data = match event.data {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    Ok(Some(Draft {
        data,
        id: event.id,
        event_type: event.event_type,
        retry: event.retry,
    }))
}

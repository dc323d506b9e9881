//! One streaming publish from the command line: events go to the hub as
//! NDJSON lines in the body of one request (`POST hub?topic=…`,
//! `application/x-ndjson`), and the hub's answer streams back one
//! `{"id": …}` line per stored event, then a summary line. Used by
//! `herald publish --lines` and `herald relay`.
//!
//! # At most [`MAX_UNACKNOWLEDGED`] events in flight
//!
//! The session sends an event only while fewer than
//! [`MAX_UNACKNOWLEDGED`] are waiting for their id. Two reasons:
//!
//! - It bounds what a broken connection leaves unknown. An event the hub
//!   acknowledged is stored; one sent but not acknowledged may or may not
//!   be (the hub may have stored it and lost the connection before its id
//!   went out). The session sends those again on a new request, so none is
//!   lost, and at most this many can arrive twice.
//! - It bounds what the session holds to send again: the events in flight
//!   are kept until their ids come back.
//!
//! The hub stores what arrived while a batch was being written as the
//! next batch, so the rate is up to this many events per store round trip
//! (one fsync on the disk store) instead of one. (The hub sends every id,
//! one message per stored batch, and stops reading the body while its
//! answer is not read: nothing is dropped on either side.)
//!
//! # Reconnection
//!
//! When the request fails after the hub first answered (a refused or reset
//! connection, the hub restarting, no id for `patience`), the session
//! waits (250 ms, doubling to 5 s) and starts a new request whose body
//! begins with the events not acknowledged, in order. It gives up when
//! nothing was acknowledged for `patience`. A hub that cannot be reached
//! at all on the first request, or that refuses the stream (401, 403, an
//! invalid event, a size limit), stops it at once: those do not get
//! better by retrying.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::publish::Publisher;

/// Events sent and not yet acknowledged, at most (see the module docs).
pub const MAX_UNACKNOWLEDGED: usize = 1024;
/// A blank line (which the hub skips) after this long without an event,
/// so a quiet input does not run into the hub's `body_timeout_secs` (30 s
/// by default).
const KEEPALIVE: Duration = Duration::from_secs(5);
/// The longest line of the hub's answer: an id line is ~60 bytes, a
/// summary a few hundred.
const MAX_ANSWER_LINE: usize = 64 * 1024;

/// What the session reports as events are stored.
pub trait Acks {
    /// Event number `line` (from 1, in input order) was stored under `id`.
    fn acked(&mut self, line: u64, id: &str) -> anyhow::Result<()>;
    /// Called when no more answer is buffered: a moment to flush output.
    fn idle(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// A new request is about to re-send `count` events after `why`.
    fn retrying(&mut self, why: &anyhow::Error, count: usize, delay: Duration) {
        eprintln!(
            "herald: {}; publishing again in {:.1}s ({count} event{} not acknowledged sent again)",
            crate::exit::one_line(why),
            delay.as_secs_f64(),
            if count == 1 { "" } else { "s" }
        );
    }
}

/// One line of the hub's answer.
#[derive(Deserialize)]
struct AnswerLine {
    id: Option<String>,
    published: Option<u64>,
    error: Option<String>,
    /// With `error`: the status the hub would have answered.
    status: Option<u16>,
    #[serde(default)]
    incomplete: bool,
}

/// How one request ended.
enum Attempt {
    /// Every event was sent and acknowledged, and the input ended.
    Done,
    /// Worth another request.
    Retry(anyhow::Error),
    /// Not worth one.
    Fatal(anyhow::Error),
}

/// A streaming publish in progress.
pub struct Session<'a> {
    publisher: &'a Publisher,
    url: url::Url,
    patience: Duration,
    /// Sent and not acknowledged, oldest first: event `acked + 1` first.
    window: VecDeque<Bytes>,
    acked: u64,
    input_done: bool,
    /// Why the input stopped early, reported once what came before it is
    /// published.
    input_error: Option<anyhow::Error>,
    /// Whether the hub has answered a request of this session.
    answered: bool,
    last_progress: Instant,
}

impl<'a> Session<'a> {
    /// A session publishing to `url` (the hub's URL with the topics in its
    /// query string), giving up after `patience` without progress.
    pub fn new(publisher: &'a Publisher, url: url::Url, patience: Duration) -> Self {
        Session {
            publisher,
            url,
            patience,
            window: VecDeque::new(),
            acked: 0,
            input_done: false,
            input_error: None,
            answered: false,
            last_progress: Instant::now(),
        }
    }

    /// Publishes every item of `input` (each made an NDJSON line, with its
    /// `\n`, by `encode`; an `Err` from it stops the input there), until
    /// the input ends; returns how many events were published.
    pub async fn run<T>(
        mut self,
        input: &mut mpsc::Receiver<T>,
        mut encode: impl FnMut(T) -> anyhow::Result<Bytes>,
        acks: &mut impl Acks,
    ) -> anyhow::Result<u64> {
        let mut delay = Duration::from_millis(250);
        loop {
            let acked_before = self.acked;
            match self.attempt(input, &mut encode, acks).await {
                Attempt::Done => break,
                Attempt::Fatal(err) => return Err(err),
                Attempt::Retry(err) => {
                    if !self.answered {
                        return Err(err);
                    }
                    if self.acked > acked_before {
                        delay = Duration::from_millis(250);
                    }
                    if self.last_progress.elapsed() >= self.patience {
                        return Err(err.context(format!(
                            "giving up: nothing acknowledged for {:?} ({} events published, from line {} on not known to be)",
                            self.patience,
                            self.acked,
                            self.acked + 1
                        )));
                    }
                    acks.retrying(&err, self.window.len(), delay);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        match self.input_error {
            Some(err) => Err(err),
            None => Ok(self.acked),
        }
    }

    async fn attempt<T>(
        &mut self,
        input: &mut mpsc::Receiver<T>,
        encode: &mut impl FnMut(T) -> anyhow::Result<Bytes>,
        acks: &mut impl Acks,
    ) -> Attempt {
        // The body: what was not acknowledged, then new events as they
        // come. The channel holds the window and a few keep-alives.
        let (body_tx, body_rx) = mpsc::channel::<Bytes>(MAX_UNACKNOWLEDGED + 8);
        for line in &self.window {
            let _ = body_tx.try_send(line.clone());
        }
        let mut body_tx = (!self.input_done).then_some(body_tx);
        let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(
            body_rx,
            |mut rx| async move {
                let line = rx.recv().await?;
                Some((Ok::<_, std::io::Error>(line), rx))
            },
        ));
        let mut request = self
            .publisher
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        if let Some(token) = &self.publisher.token {
            request = request.bearer_auth(token);
        }
        let mut sending = Box::pin(request.send());
        let mut answer: Option<futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>> =
            None;
        let mut pending = Vec::new();
        let mut acked_here = 0u64;
        let mut last_sent = Instant::now();
        let mut last_ack = Instant::now();

        loop {
            let can_take =
                body_tx.is_some() && !self.input_done && self.window.len() < MAX_UNACKNOWLEDGED;
            let stall_at = last_ack.max(self.last_progress) + self.patience;
            tokio::select! {
                response = &mut sending, if answer.is_none() => {
                    let response = match response {
                        Ok(response) => response,
                        Err(err) => return Attempt::Retry(self.publisher.send_error(&err)),
                    };
                    let status = response.status();
                    if !status.is_success() {
                        let err = self.publisher.refusal(response).await;
                        // The hub closing, or busy: it says when to come back.
                        return if matches!(status.as_u16(), 429 | 502 | 503 | 504) && self.answered {
                            Attempt::Retry(err)
                        } else {
                            Attempt::Fatal(self.at_line(err))
                        };
                    }
                    self.answered = true;
                    last_ack = Instant::now();
                    answer = Some(futures_util::stream::unfold(response, |mut response| async move {
                        let chunk = response.chunk().await.transpose()?;
                        Some((chunk, response))
                    }).boxed());
                }
                chunk = async { answer.as_mut().expect("answer").next().await }, if answer.is_some() => {
                    let chunk = match chunk {
                        None => return Attempt::Retry(anyhow::anyhow!(
                            "the hub's answer ended before its summary"
                        )),
                        Some(Err(err)) => return Attempt::Retry(anyhow::anyhow!(
                            "the connection to the hub broke: {}",
                            super::publish::describe_send_error(&err)
                        )),
                        Some(Ok(chunk)) => chunk,
                    };
                    pending.extend_from_slice(&chunk);
                    let mut start = 0;
                    while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
                        let line = &pending[start..start + end];
                        start += end + 1;
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        let line: AnswerLine = match serde_json::from_slice(line) {
                            Ok(line) => line,
                            Err(err) => return Attempt::Fatal(anyhow::anyhow!(
                                "the hub's answer is not the streaming publish's NDJSON ({err}): is {} a Herald hub?",
                                self.publisher.hub.url
                            )),
                        };
                        if let Some(published) = line.published {
                            return self.summary(line, published, acked_here);
                        }
                        let Some(id) = line.id else { continue };
                        if self.window.pop_front().is_none() {
                            return Attempt::Fatal(anyhow::anyhow!(
                                "the hub acknowledged more events than were sent"
                            ));
                        }
                        self.acked += 1;
                        acked_here += 1;
                        last_ack = Instant::now();
                        self.last_progress = last_ack;
                        if let Err(err) = acks.acked(self.acked, &id) {
                            return Attempt::Fatal(err);
                        }
                    }
                    pending.drain(..start);
                    if pending.len() > MAX_ANSWER_LINE {
                        return Attempt::Fatal(anyhow::anyhow!(
                            "the hub's answer has a line over {MAX_ANSWER_LINE} bytes"
                        ));
                    }
                    if let Err(err) = acks.idle() {
                        return Attempt::Fatal(err);
                    }
                }
                item = input.recv(), if can_take => {
                    let line = match item.map(&mut *encode) {
                        Some(Ok(line)) => line,
                        Some(Err(err)) => {
                            self.input_error = Some(err);
                            self.input_done = true;
                            body_tx = None;
                            continue;
                        }
                        None => {
                            self.input_done = true;
                            // The body ends: the hub stores what it has and
                            // sends the summary.
                            body_tx = None;
                            continue;
                        }
                    };
                    if self.window.is_empty() {
                        // The stall clock starts with the oldest event waiting.
                        last_ack = Instant::now();
                    }
                    self.window.push_back(line.clone());
                    // A closed body means a broken request, which the
                    // answer reports; the line is in the window either way.
                    if let Some(tx) = &body_tx {
                        let _ = tx.try_send(line);
                    }
                    last_sent = Instant::now();
                }
                () = tokio::time::sleep_until((last_sent + KEEPALIVE).into()), if body_tx.is_some() => {
                    if let Some(tx) = &body_tx {
                        if tx.capacity() > MAX_UNACKNOWLEDGED {
                            let _ = tx.try_send(Bytes::from_static(b"\n"));
                        }
                    }
                    last_sent = Instant::now();
                }
                () = tokio::time::sleep_until(stall_at.into()), if !self.window.is_empty() || answer.is_none() => {
                    return Attempt::Retry(anyhow::anyhow!(
                        "the hub acknowledged nothing for {:?} (behind a proxy, make sure it streams request bodies: nginx's proxy_request_buffering off)",
                        self.patience
                    ));
                }
            }
        }
    }

    /// The summary line ends a request.
    fn summary(&mut self, line: AnswerLine, published: u64, acked_here: u64) -> Attempt {
        // Every id comes before the summary; the count is a check.
        if published > acked_here {
            let missing = (published - acked_here).min(self.window.len() as u64);
            eprintln!(
                "herald: the hub stored {missing} more event(s) than it sent ids for; their ids are not printed"
            );
            for _ in 0..missing {
                self.window.pop_front();
                self.acked += 1;
            }
        }
        if let Some(error) = line.error {
            let error = anyhow::anyhow!("the hub stopped the stream: {error}");
            // A store outage, a busy or closing hub, a quiet spell: those
            // pass; a refused event or token does not.
            return if matches!(line.status, Some(408 | 429 | 502 | 503 | 504)) {
                Attempt::Retry(error)
            } else {
                Attempt::Fatal(self.at_line(error))
            };
        }
        if line.incomplete {
            // Cannot happen with whole lines; a proxy cutting the body can.
            return Attempt::Retry(anyhow::anyhow!("the hub received a cut body"));
        }
        if self.input_done && self.window.is_empty() {
            Attempt::Done
        } else {
            Attempt::Retry(anyhow::anyhow!(
                "the hub ended the stream early ({} events not acknowledged)",
                self.window.len()
            ))
        }
    }

    /// "line 12: …": the first event not published, when the input had
    /// started.
    fn at_line(&self, err: anyhow::Error) -> anyhow::Error {
        if self.acked == 0 && self.window.is_empty() {
            err
        } else {
            err.context(format!(
                "line {}{}",
                self.acked + 1,
                if self.window.len() > 1 || !self.input_done {
                    " and after not published"
                } else {
                    " not published"
                }
            ))
        }
    }
}

/// The streaming publish URL: the hub's URL with the topics (and
/// `private`) in its query string.
pub fn stream_url(hub: &url::Url, topics: &[String], private: bool) -> url::Url {
    let mut url = hub.clone();
    {
        let mut query = url.query_pairs_mut();
        for topic in topics {
            query.append_pair("topic", topic);
        }
        if private {
            query.append_pair("private", "on");
        }
    }
    url
}

/// One NDJSON line for an event: `{"data": …, "type"?, "id"?, "retry"?}`
/// and a `\n`.
pub fn ndjson_line(
    data: &str,
    event_type: Option<&str>,
    id: Option<&str>,
    retry: Option<u64>,
) -> Bytes {
    let string = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut line = String::with_capacity(data.len() + 16);
    line.push_str("{\"data\":");
    line.push_str(&string(data));
    if let Some(event_type) = event_type {
        line.push_str(",\"type\":");
        line.push_str(&string(event_type));
    }
    if let Some(id) = id {
        line.push_str(",\"id\":");
        line.push_str(&string(id));
    }
    if let Some(retry) = retry {
        line.push_str(&format!(",\"retry\":{retry}"));
    }
    line.push_str("}\n");
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_hold_what_is_given() {
        assert_eq!(
            &ndjson_line("a\n\"b\"", None, None, None)[..],
            b"{\"data\":\"a\\n\\\"b\\\"\"}\n"
        );
        assert_eq!(
            &ndjson_line("x", Some("t"), Some("1"), Some(500))[..],
            b"{\"data\":\"x\",\"type\":\"t\",\"id\":\"1\",\"retry\":500}\n"
        );
    }

    #[test]
    fn the_url_names_the_topics() {
        let hub = url::Url::parse("http://127.0.0.1:1/.well-known/mercure").unwrap();
        assert_eq!(
            stream_url(&hub, &["a b".into(), "c&d".into()], true).as_str(),
            "http://127.0.0.1:1/.well-known/mercure?topic=a+b&topic=c%26d&private=on"
        );
    }
}

//! The builder: everything an event source can be told before it connects.
//!
//! The browser's `EventSource` takes a URL and one flag; a Rust client
//! also needs headers (`Authorization`), other methods and a body (POST or
//! QUERY subscriptions, as `fetch-event-source` users send), a starting
//! `Last-Event-ID`, a retry policy and timeouts. Defaults are the
//! browser's behaviour wherever a browser has one, and live in
//! [`Builder::new`] only.
//!
//! Fallible setters ([`Builder::header`]) do not return a `Result`: the
//! first error is kept and reported by [`Builder::build`], as
//! `reqwest::RequestBuilder` does, so a configuration reads as one chain
//! with a single `?` instead of one per header.

use std::time::Duration;

use bytes::Bytes;
use herald_proto::Limits;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;
use url::Url;

use crate::backoff::Backoff;
use crate::content_type::EVENT_STREAM;
use crate::{Error, ErrorKind, EventSource};

/// The `Last-Event-ID` request header.
pub(crate) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The resolved configuration an [`EventSource`] connects with.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) url: Url,
    pub(crate) method: Method,
    /// Sent on every request; `Last-Event-ID` is added per request.
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) last_event_id: String,
    pub(crate) retry: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) max_retries: Option<u32>,
    pub(crate) reconnect: bool,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) limits: Limits,
}

/// Configures an [`EventSource`]; made by [`EventSource::builder`].
///
/// ```
/// use std::time::Duration;
/// use herald_client::EventSource;
///
/// let source = EventSource::builder("https://hub.example/.well-known/mercure?topic=news")
///     .header("Authorization", "Bearer <token>")
///     .last_event_id("urn:uuid:42")
///     .retry(Duration::from_secs(1))
///     .max_retries(20)
///     .build()?;
/// # Ok::<(), herald_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    url: String,
    method: Method,
    headers: HeaderMap,
    body: Option<Bytes>,
    last_event_id: String,
    retry: Duration,
    max_retry_delay: Duration,
    max_retries: Option<u32>,
    reconnect: bool,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    max_redirects: usize,
    limits: Limits,
    root_certificates: Vec<reqwest::Certificate>,
    accept_invalid_certificates: bool,
    /// The first error of a fallible setter, reported by `build`.
    error: Option<Error>,
}

impl Builder {
    /// A builder for the event stream at `url`, with the defaults: `GET`,
    /// no body, no initial last event id, a reconnection time of 3 s
    /// (Chrome's), backoff capped at 30 s, unlimited retries, a 30 s
    /// connect timeout, no read timeout, 20 redirects (Fetch's limit) and
    /// the decoder's default [`Limits`].
    pub fn new(url: impl Into<String>) -> Self {
        Builder {
            url: url.into(),
            method: Method::GET,
            headers: HeaderMap::new(),
            body: None,
            last_event_id: String::new(),
            retry: Duration::from_secs(3),
            max_retry_delay: Duration::from_secs(30),
            max_retries: None,
            reconnect: true,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: None,
            max_redirects: 20,
            limits: Limits::default(),
            root_certificates: Vec::new(),
            accept_invalid_certificates: false,
            error: None,
        }
    }

    /// Sets a request header sent on every request, replacing an earlier
    /// value of the same name. `Authorization`, `Cookie` and
    /// `Proxy-Authorization` values are marked sensitive, so they are
    /// redacted from `Debug` output.
    ///
    /// An invalid name or value is reported by [`Builder::build`] as
    /// [`ErrorKind::InvalidHeader`].
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let name = HeaderName::try_from(name).map_err(Into::into);
        let value = HeaderValue::try_from(value).map_err(Into::into);
        match (name, value) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            (Err(error), _) | (_, Err(error)) => {
                self.error
                    .get_or_insert(Error::with_source(ErrorKind::InvalidHeader, error));
            }
        }
        self
    }

    /// Adds request headers sent on every request (replacing earlier
    /// values of the same names).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        let mut last = None;
        for (name, value) in headers {
            // A `None` name repeats the previous one: an extra value.
            let name = match name {
                Some(name) => {
                    self.headers.remove(&name);
                    last = Some(name.clone());
                    name
                }
                None => match &last {
                    Some(name) => name.clone(),
                    None => continue,
                },
            };
            self.headers.append(name, value);
        }
        self
    }

    /// The request method; `GET` by default. Any method works, including
    /// extension methods such as `QUERY`
    /// (`Method::from_bytes(b"QUERY")`).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// A request body, sent on every request (it is cheap to resend:
    /// `Bytes` is reference counted). Set a `Content-Type` header to match.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The last event id to resume from: sent as `Last-Event-ID` on the
    /// first request (when not empty), and reported by events until the
    /// server sends an id of its own.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection time until the server sets one with `retry:`
    /// (3 s by default).
    pub fn retry(mut self, reconnection_time: Duration) -> Self {
        self.retry = reconnection_time;
        self
    }

    /// The longest delay exponential backoff grows to (30 s by default).
    /// A longer reconnection time set by the server still applies.
    pub fn max_retry_delay(mut self, max: Duration) -> Self {
        self.max_retry_delay = max;
        self
    }

    /// The cap on consecutive reconnection attempts that make no progress
    /// (attempts that fail, or connections that end without delivering a
    /// frame). When it is reached the stream ends with
    /// [`ErrorKind::TooManyRetries`]. `None`, the default, retries forever,
    /// as a browser does.
    pub fn max_retries(mut self, max: impl Into<Option<u32>>) -> Self {
        self.max_retries = max.into();
        self
    }

    /// Whether to reconnect at all (`true` by default). Without
    /// reconnection, a stream the server ends cleanly ends the event
    /// stream with `None`, and a network failure ends it with that error.
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// How long one attempt may take from sending the request to the
    /// response headers, redirects included (30 s by default; `None`
    /// waits forever). Expiry is a network error: the source reconnects.
    pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connect_timeout = timeout.into();
        self
    }

    /// How long an open stream may stay silent before the connection is
    /// dropped and re-established. Off by default: heartbeat intervals vary
    /// from server to server, so only the caller knows a safe value (a few
    /// heartbeat intervals; Herald's hub sends one every 15 s).
    pub fn read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.read_timeout = timeout.into();
        self
    }

    /// How many redirects one request may follow (20 by default, Fetch's
    /// limit). Zero follows none: a redirect status then fails the
    /// connection like any status other than 200.
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// The decoder's size limits (a line, an event's data).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Trusts one more root certificate, given in PEM: a private CA, or the
    /// self-signed certificate of a development hub. The built-in roots
    /// (see the crate's features) stay trusted.
    ///
    /// A certificate that does not parse is reported by
    /// [`Builder::build`] as [`ErrorKind::Client`].
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        match reqwest::Certificate::from_pem(pem.as_ref()) {
            Ok(certificate) => self.root_certificates.push(certificate),
            Err(error) => {
                self.error
                    .get_or_insert(Error::with_source(ErrorKind::Client, error));
            }
        }
        self
    }

    /// Accepts any server certificate, even expired, self-signed or for
    /// another host. This removes the protection TLS gives: use it only
    /// against a hub on your own machine (`herald tail -k`), never in
    /// production; [`Builder::root_certificate_pem`] is the safe way to
    /// trust a self-signed hub.
    pub fn danger_accept_invalid_certificates(mut self, accept: bool) -> Self {
        self.accept_invalid_certificates = accept;
        self
    }

    /// Checks the configuration and sets up the HTTP client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUrl`] when the URL does not parse or is not
    /// `http`/`https` (retrying could never help), [`ErrorKind::InvalidHeader`]
    /// for a bad header, [`ErrorKind::Client`] when TLS cannot be set up.
    pub fn build(self) -> Result<EventSource, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let url =
            Url::parse(&self.url).map_err(|e| Error::with_source(ErrorKind::InvalidUrl, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::with_source(
                ErrorKind::InvalidUrl,
                format!("unsupported URL scheme {:?}", url.scheme()),
            ));
        }

        let mut headers = self.headers;
        let mut last_event_id = self.last_event_id;
        // A `Last-Event-ID` among the headers is the initial id: the
        // header itself is set per request, from the stream's state.
        if let Some(value) = headers.remove(LAST_EVENT_ID) {
            if last_event_id.is_empty() {
                last_event_id = String::from_utf8_lossy(value.as_bytes()).into_owned();
            }
        }
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ] {
            if let header::Entry::Occupied(mut entry) = headers.entry(name) {
                entry.iter_mut().for_each(|value| value.set_sensitive(true));
            }
        }
        // What a browser sends: the `Accept` an EventSource may set, and
        // the `no-cache` pair Fetch adds for the cache mode "no-store", so
        // no cache or proxy answers from a stored copy.
        let defaults = [
            (header::ACCEPT, EVENT_STREAM),
            (header::CACHE_CONTROL, "no-cache"),
            (header::PRAGMA, "no-cache"),
            (
                header::USER_AGENT,
                concat!("herald-client/", env!("CARGO_PKG_VERSION")),
            ),
        ];
        for (name, value) in defaults {
            headers
                .entry(name)
                .or_insert(HeaderValue::from_static(value));
        }

        let redirect = if self.max_redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::limited(self.max_redirects)
        };
        let mut client = reqwest::Client::builder()
            .redirect(redirect)
            .danger_accept_invalid_certs(self.accept_invalid_certificates);
        for certificate in self.root_certificates {
            client = client.add_root_certificate(certificate);
        }
        let client = client
            .build()
            .map_err(|e| Error::with_source(ErrorKind::Client, e))?;

        let config = Config {
            url,
            method: self.method,
            headers,
            body: self.body,
            last_event_id,
            retry: self.retry,
            backoff: Backoff {
                max_delay: self.max_retry_delay,
            },
            max_retries: self.max_retries,
            reconnect: self.reconnect,
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            limits: self.limits,
        };
        Ok(EventSource::from_parts(config, client))
    }
}

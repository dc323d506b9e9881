//! The event source: a configured endpoint, and a cheap handle to open
//! streams from it.
//!
//! An [`EventSource`] is what the browser's constructor validates; an
//! [`EventStream`] is one live subscription with its own connection, last
//! event id and reconnection time. Splitting them lets one configured
//! source (and its HTTP connection pool and TLS setup, which are costly to
//! make) serve many streams, and keeps each stream's state in the stream,
//! owned by the task that polls it, with no lock.

use std::fmt;
use std::sync::Arc;

use url::Url;

use crate::builder::Config;
use crate::{Builder, Error, EventStream};

/// A configured Server-Sent Events endpoint. Cloning is cheap: clones share
/// the configuration and the HTTP connection pool.
#[derive(Clone)]
pub struct EventSource {
    shared: Arc<Shared>,
}

/// What every stream of one source shares, read-only.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) client: reqwest::Client,
}

impl EventSource {
    /// A builder for the event stream at `url`.
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::new(url)
    }

    /// An event source for `url` with the default settings.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn new(url: impl Into<String>) -> Result<Self, Error> {
        Builder::new(url).build()
    }

    pub(crate) fn from_parts(config: Config, client: reqwest::Client) -> Self {
        EventSource {
            shared: Arc::new(Shared { config, client }),
        }
    }

    /// The configured URL (the browser's `url` attribute: it does not
    /// change when the server redirects; [`Open::url`](crate::Open::url)
    /// has the final one).
    pub fn url(&self) -> &Url {
        &self.shared.config.url
    }

    /// Opens a new stream: it connects when first polled, and starts from
    /// the configured last event id. Each call gives an independent stream
    /// with its own connection.
    pub fn stream(&self) -> EventStream {
        EventStream::new(Arc::clone(&self.shared))
    }
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's header map redacts sensitive values itself.
        f.debug_struct("EventSource")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

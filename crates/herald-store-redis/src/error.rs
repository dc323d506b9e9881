//! Redis errors as [`StoreError`]s.
//!
//! A round trip that could not reach Redis (refused, reset, dropped, timed
//! out) is [`ErrorKind::Unavailable`]: nothing was done and the call may work
//! a moment later (the hub answers publishes 503 with `Retry-After`, and its
//! dispatcher follows again with backoff). A command Redis answered with an
//! error is [`ErrorKind::Backend`]. Either way the Redis error is the source.

use herald_store::{ErrorKind, StoreError};
use redis::RedisError;

/// A Redis error as a store error of the kind it is.
pub(crate) fn from_redis(error: RedisError) -> StoreError {
    if connection_lost(&error) {
        StoreError::new(ErrorKind::Unavailable)
            .with_message("cannot reach redis")
            .with_source(error)
    } else {
        StoreError::backend(error).with_message("redis refused a command")
    }
}

fn connection_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

//! Redis errors as [`StoreError`]s.
//!
//! A failed round trip (refused, reset, timed out, or an error reply) is
//! [`ErrorKind::Backend`](herald_store::ErrorKind::Backend) with the Redis
//! error as its source: the kind herald-store has for "the engine failed",
//! which the hub retries with backoff. herald-store has no separate
//! "unavailable" kind; [`is_unavailable`](crate::is_unavailable) tells a
//! lost connection from a refused command for callers that care.

use herald_store::StoreError;
use redis::RedisError;

/// A Redis error as a `Backend` store error, saying whether Redis could not
/// be reached.
pub(crate) fn unavailable(error: RedisError) -> StoreError {
    let message = if connection_lost(&error) {
        "redis is unavailable"
    } else {
        "redis refused a command"
    };
    StoreError::backend(error).with_message(message)
}

pub(crate) fn connection_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

//! [`Cursor`]: a position in the hub-wide log.
//!
//! Cursors are the store's own ordering key, distinct from the public event
//! ids a publisher may choose: ids may repeat and carry no order, cursors are
//! strictly increasing and never reused, so "everything after X" is always a
//! well-defined range.

use std::fmt;

/// Position of a record in the hub-wide log: strictly increasing in append
/// order, never reused (also across restarts for durable backends).
///
/// [`Cursor::ZERO`] is "before the first record": reading or following after
/// it starts at the very beginning of the log. Cursors are not necessarily
/// contiguous (a backend may skip values), only increasing.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(u64);

impl Cursor {
    /// The position before the first record; no record ever has it.
    pub const ZERO: Cursor = Cursor(0);

    /// Wraps a raw position, e.g. one a backend read from disk.
    pub const fn new(value: u64) -> Self {
        Cursor(value)
    }

    /// The raw position, e.g. for a backend to persist.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn zero_is_default_and_smallest() {
        assert_eq!(Cursor::default(), Cursor::ZERO);
        assert!(Cursor::ZERO < Cursor::new(1));
        assert_eq!(Cursor::new(42).get(), 42);
        assert_eq!(Cursor::new(42).to_string(), "42");
    }
}

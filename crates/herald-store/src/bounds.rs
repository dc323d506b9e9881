//! [`Bounds`]: the retained range of the log.

use crate::Cursor;

/// The retained range of the log, as [`Store::bounds`](crate::Store::bounds)
/// reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The first retained record's cursor; `None` if nothing is retained
    /// (never appended, or everything trimmed).
    pub oldest: Option<Cursor>,
    /// The last appended cursor, retained or not; [`Cursor::ZERO`] if nothing
    /// was ever appended. It never goes back, even when everything is trimmed.
    pub head: Cursor,
}

impl Bounds {
    /// The `after` cursor that replays everything retained (what Mercure's
    /// `earliest` asks for): just before [`oldest`](Bounds::oldest), or
    /// [`head`](Bounds::head) when nothing is retained.
    ///
    /// Following from [`Cursor::ZERO`] instead would report
    /// [`ErrorKind::Trimmed`](crate::ErrorKind::Trimmed) once anything was
    /// trimmed, because the records right after ZERO are gone.
    pub fn before_oldest(&self) -> Cursor {
        match self.oldest {
            // `oldest` is never ZERO (no record has it), so this cannot underflow.
            Some(oldest) => Cursor::new(oldest.get().saturating_sub(1)),
            None => self.head,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_oldest() {
        let empty = Bounds {
            oldest: None,
            head: Cursor::new(7),
        };
        assert_eq!(empty.before_oldest(), Cursor::new(7));
        let some = Bounds {
            oldest: Some(Cursor::new(5)),
            head: Cursor::new(9),
        };
        assert_eq!(some.before_oldest(), Cursor::new(4));
    }
}

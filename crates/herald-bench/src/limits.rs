//! The open-files limit: raised to the hard limit at start, and the number
//! of subscriber sockets one process may then hold.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors kept free for everything that is not a subscriber socket
/// (publishing connections, pipes to workers, the runtime, /proc reads).
const RESERVED_FDS: u64 = 256;

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit and returns the new
/// soft limit (the old one if raising fails).
pub fn raise_nofile() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let Some(hard) = limit.maximum else {
        // Unlimited hard limit: ask for a generous soft one.
        let wanted = Rlimit {
            current: Some(1 << 20),
            maximum: None,
        };
        return match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => 1 << 20,
            Err(_) => limit.current.unwrap_or(1024),
        };
    };
    if limit.current.is_some_and(|soft| soft >= hard) {
        return hard;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    ) {
        Ok(()) => hard,
        Err(_) => limit.current.unwrap_or(1024),
    }
}

/// Subscriber sockets one process can hold under an open-files limit.
pub fn sockets_per_process(nofile: u64) -> usize {
    usize::try_from(nofile.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_is_idempotent_and_capacity_reserves() {
        let first = raise_nofile();
        assert_eq!(raise_nofile(), first);
        assert_eq!(sockets_per_process(20_000), 19_744);
        assert_eq!(sockets_per_process(10), 1);
    }
}

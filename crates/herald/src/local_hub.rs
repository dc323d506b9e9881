//! Where a local hub is: `herald serve` records its URL in its data
//! directory, and `herald publish`, `herald tail` and `herald token`, given
//! no `--hub`, read it there.
//!
//! Without this, the client commands could only guess the default
//! `http://127.0.0.1:8080/…`: a hub started with `--listen 127.0.0.1:9090`,
//! or `--listen 127.0.0.1:0` (a port the OS picks), or a data directory
//! other than `./herald-data`, was out of their reach even when `--data
//! DIR` named its directory. Now `DIR/hub.url` holds one line, the hub's
//! URL (the audience of its tokens: `public_url` when set, else
//! `http://LISTEN/.well-known/mercure` with the port it really got), so
//! `--data DIR` finds both the token and the hub, and a shell can read it
//! too: `curl -N "$(cat herald-data/hub.url)?match=demo"`.
//!
//! The file lives as long as the hub listens: written once the socket is
//! bound (after the publisher token, so a reader who finds the URL finds
//! the token too), removed when `herald serve` returns. A hub that crashed
//! or was killed with `kill -9` leaves it behind; nothing can tell that
//! from the file alone (a pid could have been reused), so a client trusts
//! it and, when nothing answers there, says that the recorded hub does not
//! answer rather than only "connection refused" ([`HubLocation::unreachable`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use url::Url;

use crate::local_key::{LOCAL_DATA_DIR, LOCAL_HUB_URL};

/// The file, in a data directory, that holds the URL of the hub using it.
pub const FILE_NAME: &str = "hub.url";

/// The recorded-URL file of a data directory.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Records that the hub using `data_dir` answers at `url`; the file goes
/// away when the returned guard drops. Call it once the hub listens, and
/// keep the guard until it stops.
pub fn record(data_dir: &Path, url: &Url) -> anyhow::Result<Recorded> {
    let path = path(data_dir);
    let contents = format!("{url}\n");
    // Written aside then renamed over, so a client reading at the same
    // moment sees the old URL or the new one, never half a line.
    let partial = data_dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    std::fs::write(&partial, &contents)
        .and_then(|()| std::fs::rename(&partial, &path))
        .with_context(|| format!("cannot record the hub's URL in {}", path.display()))?;
    tracing::debug!(path = %path.display(), "hub URL recorded");
    Ok(Recorded { path, contents })
}

/// The recorded URL of a running hub; removes the record on drop.
#[derive(Debug)]
#[must_use = "the record is removed when this guard drops"]
pub struct Recorded {
    path: PathBuf,
    /// What this hub wrote.
    contents: String,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        // Two hubs sharing a data directory (possible with the memory
        // store) each write the file; the one that stops first must not
        // remove the other's record. Checking then removing is not atomic,
        // but only a hub starting in that instant could lose its record.
        match std::fs::read_to_string(&self.path) {
            Ok(contents) if contents == self.contents => {
                if let Err(err) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), "cannot remove the hub's recorded URL: {err}");
                }
            }
            _ => {}
        }
    }
}

/// The hub a client command talks to, and how it was chosen, which
/// decides what to say when it does not answer.
#[derive(Clone, Debug)]
pub struct HubLocation {
    /// The hub's URL.
    pub url: Url,
    /// Where the URL came from.
    pub source: HubSource,
}

/// Where a client command's hub URL came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubSource {
    /// `--hub` or `HERALD_HUB`.
    Given,
    /// The file a running hub wrote in its data directory.
    Recorded {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// Nothing recorded in the default data directory: the URL of a hub
    /// with the default settings.
    Default,
}

/// Why no hub could be located.
#[derive(Debug)]
pub enum LocateError {
    /// `--hub` or `HERALD_HUB` is not a URL.
    InvalidGiven {
        given: String,
        error: url::ParseError,
    },
    /// `--data DIR` was given, and no hub recorded its URL there.
    NotRecorded { data_dir: PathBuf },
    /// The recorded file cannot be read.
    Unreadable { path: PathBuf, error: io::Error },
    /// The recorded file does not hold a URL.
    InvalidRecord {
        path: PathBuf,
        contents: String,
        error: url::ParseError,
    },
}

impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocateError::InvalidGiven { given, error } => {
                write!(f, "invalid hub URL {given:?}: {error}")
            }
            LocateError::NotRecorded { data_dir } => write!(
                f,
                "no hub is running with the data directory {dir} ({file} does not exist): \
                 start one with `herald serve --data {dir}`, or give --hub URL",
                dir = data_dir.display(),
                file = path(data_dir).display(),
            ),
            LocateError::Unreadable { path, error } => {
                write!(
                    f,
                    "cannot read the hub's URL from {}: {error}",
                    path.display()
                )
            }
            LocateError::InvalidRecord {
                path,
                contents,
                error,
            } => write!(
                f,
                "{} should hold the hub's URL, not {contents:?} ({error}): \
                 remove it, or give --hub URL",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LocateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocateError::InvalidGiven { error, .. } | LocateError::InvalidRecord { error, .. } => {
                Some(error)
            }
            LocateError::Unreadable { error, .. } => Some(error),
            LocateError::NotRecorded { .. } => None,
        }
    }
}

/// The hub to use: `given` (`--hub` or `HERALD_HUB`) if there is one, else
/// the URL recorded in `data_dir` (`--data`, by default `herald-data`).
///
/// With no record, a `data_dir` named on the command line is an error (the
/// hub using it is not running, and the default URL would reach another
/// hub, which would refuse that directory's token); the default directory
/// falls back to the default URL, for a hub started elsewhere with the
/// default settings.
pub fn locate(given: Option<&str>, data_dir: Option<&Path>) -> Result<HubLocation, LocateError> {
    // An empty HERALD_HUB counts as unset, as an empty HERALD_TOKEN does:
    // shells make it easy to export one by mistake.
    if let Some(given) = given.map(str::trim).filter(|url| !url.is_empty()) {
        let url = Url::parse(given).map_err(|error| LocateError::InvalidGiven {
            given: given.to_owned(),
            error,
        })?;
        return Ok(HubLocation {
            url,
            source: HubSource::Given,
        });
    }
    let dir = data_dir.unwrap_or(Path::new(LOCAL_DATA_DIR));
    let file = path(dir);
    match std::fs::read_to_string(&file) {
        Ok(contents) => {
            let url = Url::parse(contents.trim()).map_err(|error| LocateError::InvalidRecord {
                path: file.clone(),
                contents: contents.chars().take(200).collect(),
                error,
            })?;
            Ok(HubLocation {
                url,
                source: HubSource::Recorded {
                    data_dir: dir.to_owned(),
                },
            })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => match data_dir {
            Some(dir) => Err(LocateError::NotRecorded {
                data_dir: dir.to_owned(),
            }),
            None => Ok(HubLocation {
                url: Url::parse(LOCAL_HUB_URL).expect("the default hub URL parses"),
                source: HubSource::Default,
            }),
        },
        Err(error) => Err(LocateError::Unreadable { path: file, error }),
    }
}

impl HubLocation {
    /// What to say when nothing answers at the hub's URL; `cause` is the
    /// innermost error ("Connection refused (os error 111)").
    pub fn unreachable(&self, cause: &str) -> String {
        match &self.source {
            HubSource::Recorded { data_dir } => format!(
                "the hub recorded in {file} does not answer at {url}: it probably stopped without \
                 removing that file (a crash, or kill -9); start it again with \
                 `herald serve --data {dir}`, or give --hub URL ({cause})",
                file = path(data_dir).display(),
                url = self.url,
                dir = data_dir.display(),
            ),
            HubSource::Given | HubSource::Default => format!(
                "cannot reach the hub at {}: is `herald serve` running? ({cause})",
                self.url
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("herald-local-hub-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_record_is_found_and_removed_with_its_guard() {
        let dir = temp_dir("record");
        let url = Url::parse("http://127.0.0.1:41234/.well-known/mercure").unwrap();
        let recorded = record(&dir, &url).unwrap();
        assert_eq!(
            std::fs::read_to_string(path(&dir)).unwrap(),
            "http://127.0.0.1:41234/.well-known/mercure\n"
        );
        let found = locate(None, Some(&dir)).unwrap();
        assert_eq!(found.url, url);
        assert_eq!(
            found.source,
            HubSource::Recorded {
                data_dir: dir.clone()
            }
        );
        drop(recorded);
        assert!(!path(&dir).exists());
        // Nothing else was left in the directory.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_guard_leaves_another_hubs_record_alone() {
        let dir = temp_dir("overwritten");
        let first = Url::parse("http://127.0.0.1:1/.well-known/mercure").unwrap();
        let second = Url::parse("http://127.0.0.1:2/.well-known/mercure").unwrap();
        let first_guard = record(&dir, &first).unwrap();
        let second_guard = record(&dir, &second).unwrap();
        drop(first_guard);
        assert_eq!(locate(None, Some(&dir)).unwrap().url, second);
        drop(second_guard);
        assert!(!path(&dir).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_given_url_wins_and_an_empty_one_does_not_count() {
        let dir = temp_dir("given");
        let given = "http://example.com/.well-known/mercure";
        let found = locate(Some(given), Some(&dir)).unwrap();
        assert_eq!(
            (found.url.as_str(), found.source),
            (given, HubSource::Given)
        );
        assert!(matches!(
            locate(Some(" "), Some(&dir)),
            Err(LocateError::NotRecorded { .. })
        ));
        assert!(matches!(
            locate(Some("not a url"), None),
            Err(LocateError::InvalidGiven { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_named_directory_without_a_record_is_an_error_that_says_what_to_do() {
        let dir = temp_dir("missing");
        let err = locate(None, Some(&dir)).unwrap_err().to_string();
        assert!(
            err.starts_with("no hub is running with the data directory "),
            "{err}"
        );
        assert!(err.contains("herald serve --data "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_that_is_not_a_url_is_named() {
        let dir = temp_dir("garbage");
        std::fs::write(path(&dir), "garbage\n").unwrap();
        let err = locate(None, Some(&dir)).unwrap_err().to_string();
        assert!(
            err.contains("should hold the hub's URL, not \"garbage\\n\""),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stale_record_is_reported_as_such() {
        let location = HubLocation {
            url: Url::parse("http://127.0.0.1:9/.well-known/mercure").unwrap(),
            source: HubSource::Recorded {
                data_dir: PathBuf::from("/srv/herald"),
            },
        };
        assert_eq!(
            location.unreachable("Connection refused"),
            "the hub recorded in /srv/herald/hub.url does not answer at \
             http://127.0.0.1:9/.well-known/mercure: it probably stopped without removing that file \
             (a crash, or kill -9); start it again with `herald serve --data /srv/herald`, \
             or give --hub URL (Connection refused)"
        );
    }
}

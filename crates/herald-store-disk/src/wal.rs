//! The write-ahead log: append-only segment files in `DIR/wal/` where, with
//! [`Durability::Fsync`](crate::Durability::Fsync), each group commit is
//! made durable (one `write` and one `fdatasync`) before it is answered.
//! redb's tables are brought up to date later, many batches per
//! transaction and without an fsync each (`writer.rs`); at open, whatever
//! the log holds past redb's last durable commit is copied into redb
//! before anything else happens.
//!
//! Why a log in front of redb: a durable redb commit of one record costs
//! about 240 µs here (it writes nine 4 KiB pages across the file: two
//! B-trees, the table and allocator trees, the header) where a 4 KiB
//! append and `fdatasync` costs 130 µs; and a non-durable redb commit still
//! costs about 115 µs of CPU. A publisher that waits for its answer before
//! sending the next (one HTTP/1.1 connection, even pipelined) pays one
//! commit per publish, so the commit is the publish rate.
//! `docs/profiles/durable-publishes-round-two.md` has the measurements.
//! Rejected: redb with `Durability::None` plus the log on the same thread
//! (both costs in series: slower than today), and a home-made index (the
//! log is only ever read whole, at open; redb stays the store).
//!
//! # Layout
//!
//! A segment is named after the first cursor it may hold,
//! `{first:020}.log`, and starts with [`MAGIC`]. Then frames, one per group
//! commit:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | payload length, u32 little-endian (never 0) |
//! | 4 | CRC-32 of the payload, little-endian |
//! | n | payload: entries |
//!
//! The file is extended ahead of the frames with written zeros; a frame
//! length of 0 marks the end.
//!
//! An entry is `cursor` (u64 LE), `deadline` (u64 LE nanoseconds since the
//! epoch, `u64::MAX` for none), value length (u32 LE), then the record in
//! `codec`'s layout. A frame is all or nothing: a crash during a write
//! leaves a frame whose length runs past the end or whose checksum fails,
//! and the log ends before it (that batch was never answered). A batch is
//! never split across segments, so an `append_batch` is never half there.
//!
//! Segments are deleted once a durable redb commit covers every cursor in
//! them; the newest is kept. Opening a store copies the log into redb,
//! commits durably and deletes every segment, then starts a new one.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use herald_store::StoreError;

/// The first bytes of every segment: the format and its version.
pub(crate) const MAGIC: &[u8; 16] = b"herald-wal-v1\0\0\n";

/// A segment is closed and a new one started once it is this long.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Frame header: length and checksum.
const FRAME_HEADER: usize = 8;

/// The file is extended with written zeros this much at a time, ahead of
/// the frames. `fdatasync` after a write inside the file's length flushes
/// the data alone; past it, or into a hole or an `fallocate`d range, it
/// must also write the inode or the extent (on this machine's ext4:
/// 120–155 µs against 170–240 µs per 4 KiB write + `fdatasync`). So one
/// frame in about 3,000 pays for the next MiB of zeros.
const EXTEND_BY: u64 = 1024 * 1024;

/// The log's directory inside a data directory.
pub(crate) fn dir_of(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

/// One record read back from the log.
#[derive(Debug)]
pub(crate) struct Logged {
    pub(crate) cursor: u64,
    pub(crate) deadline: Option<u64>,
    pub(crate) value: Vec<u8>,
}

/// Appends one entry to a frame payload being built.
pub(crate) fn put_entry(payload: &mut Vec<u8>, cursor: u64, deadline: Option<u64>, value: &[u8]) {
    payload.extend_from_slice(&cursor.to_le_bytes());
    payload.extend_from_slice(&deadline.unwrap_or(u64::MAX).to_le_bytes());
    // `codec` values are bounded well below 4 GiB by the hub's limits;
    // the appender refuses larger ones before they get here.
    payload.extend_from_slice(&(value.len() as u32).to_le_bytes());
    payload.extend_from_slice(value);
}

/// The open, newest segment, appended to by the appender thread only.
pub(crate) struct Wal {
    dir: PathBuf,
    file: File,
    /// Where the next frame goes.
    offset: u64,
    /// How far the file holds written zeros (or frames).
    zeroed_to: u64,
    /// Reused frame buffer.
    frame: Vec<u8>,
}

impl Wal {
    /// Starts a new segment whose first cursor will be `first`.
    pub(crate) fn create(dir: &Path, first: u64) -> io::Result<Wal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{first:020}.log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        file.write_all_at(MAGIC, 0)?;
        file.sync_all()?;
        // The new name must be durable before anything acknowledged is in
        // the file alone.
        sync_dir(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(Wal {
            dir: dir.to_owned(),
            file,
            offset: MAGIC.len() as u64,
            zeroed_to: MAGIC.len() as u64,
            frame: Vec::new(),
        })
    }

    /// Writes one frame holding `payload` (entries from cursor `first` on)
    /// and makes it durable. On error the log is in an unknown state: the
    /// caller must not append again.
    pub(crate) fn append(&mut self, first: u64, payload: &[u8]) -> io::Result<()> {
        if self.offset >= SEGMENT_BYTES {
            *self = Wal::create(&self.dir, first)?;
        }
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::other("a group commit of 4 GiB or more"))?;
        self.frame.clear();
        self.frame.extend_from_slice(&len.to_le_bytes());
        self.frame
            .extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        self.frame.extend_from_slice(payload);
        self.file.write_all_at(&self.frame, self.offset)?;
        let end = self.offset + self.frame.len() as u64;
        if end > self.zeroed_to {
            // Rounded up to whole extensions, from the frame's end: the
            // zeros go to disk with this frame's `fdatasync`.
            let to = end.div_ceil(EXTEND_BY) * EXTEND_BY;
            let zeros = vec![0; usize::try_from(to - end).unwrap_or(0)];
            self.file.write_all_at(&zeros, end)?;
            self.zeroed_to = to;
        }
        self.file.sync_data()?;
        self.offset = end;
        // A big batch should not pin a big buffer for the life of the store.
        if self.frame.capacity() > 1 << 20 {
            self.frame = Vec::new();
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The segments in `dir`, oldest first, with their first cursors.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let first = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".log"))
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn io_error(doing: String) -> impl FnOnce(io::Error) -> StoreError {
    move |error| StoreError::backend(error).with_message(doing)
}

/// Every record of every segment in `dir`, in log order. A torn frame ends
/// a segment; only the newest segment may end so.
pub(crate) fn read_all(dir: &Path) -> Result<Vec<Logged>, StoreError> {
    let segments = segments(dir).map_err(io_error(format!("listing {}", dir.display())))?;
    let mut records = Vec::new();
    let count = segments.len();
    for (n, (_, path)) in segments.into_iter().enumerate() {
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(io_error(format!("reading {}", path.display())))?;
        let clean = read_segment(&bytes, &mut records)
            .map_err(|message| StoreError::corrupt(format!("{}: {message}", path.display())))?;
        if !clean && n + 1 < count {
            return Err(StoreError::corrupt(format!(
                "{}: a damaged frame in a segment that is not the newest",
                path.display()
            )));
        }
    }
    Ok(records)
}

/// Reads one segment's frames into `out`. Returns whether it ended cleanly
/// (no torn frame); an error if it is not a segment or a checksummed frame
/// does not parse.
fn read_segment(bytes: &[u8], out: &mut Vec<Logged>) -> Result<bool, String> {
    if bytes.len() < MAGIC.len() {
        // Created, then the crash came before the magic was durable.
        return Ok(bytes.iter().all(|&byte| byte == 0) || MAGIC.starts_with(bytes));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a Herald write-ahead log segment".to_owned());
    }
    let mut at = MAGIC.len();
    loop {
        let Some(header) = bytes.get(at..at + FRAME_HEADER) else {
            return Ok(bytes[at..].iter().all(|&byte| byte == 0));
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + FRAME_HEADER..at + FRAME_HEADER + len) else {
            return Ok(false);
        };
        if len == 0 {
            // The zeros ahead of the frames: the end of the log.
            return Ok(true);
        }
        if crc32fast::hash(payload) != crc {
            return Ok(false);
        }
        read_entries(payload, out)?;
        at += FRAME_HEADER + len;
    }
}

fn read_entries(payload: &[u8], out: &mut Vec<Logged>) -> Result<(), String> {
    fn take<'a>(payload: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
        let bytes = payload
            .get(*at..*at + n)
            .ok_or("a frame's entries run past its end")?;
        *at += n;
        Ok(bytes)
    }
    let u64_of = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
    let mut at = 0;
    while at < payload.len() {
        let cursor = u64_of(take(payload, &mut at, 8)?);
        let deadline = u64_of(take(payload, &mut at, 8)?);
        let len = take(payload, &mut at, 4)?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let value = take(payload, &mut at, len)?.to_vec();
        out.push(Logged {
            cursor,
            deadline: (deadline != u64::MAX).then_some(deadline),
            value,
        });
    }
    Ok(())
}

/// Deletes the segments every cursor of which is at or below `through`
/// (durable in redb), never the newest. Errors are logged, not returned:
/// a segment left behind is only read again at the next open.
pub(crate) fn remove_through(dir: &Path, through: u64) {
    let segments = match segments(dir) {
        Ok(segments) => segments,
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "herald-store-disk: listing the log");
            return;
        }
    };
    // Segment k holds cursors below segment k + 1's first.
    for pair in segments.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if next_first.saturating_sub(1) > through {
            break;
        }
        if let Err(error) = std::fs::remove_file(path) {
            tracing::warn!(%error, path = %path.display(), "herald-store-disk: removing a log segment");
        }
    }
}

/// Deletes every segment (all of them durable in redb), at open.
pub(crate) fn remove_all(dir: &Path) -> Result<(), StoreError> {
    for (_, path) in segments(dir).map_err(io_error(format!("listing {}", dir.display())))? {
        std::fs::remove_file(&path).map_err(io_error(format!("removing {}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use herald_store::{Cursor, NewRecord, Store};

    use super::*;
    use crate::codec;
    use crate::{DiskOptions, DiskStore};

    fn value(id: &str, published: u64) -> Vec<u8> {
        let record = NewRecord {
            id: id.into(),
            topics: vec!["https://example.com/t".to_owned()].into(),
            private: false,
            frame: Bytes::from(format!("id: {id}\ndata: x\n\n")),
            keep_for: None,
        };
        let mut out = Vec::new();
        codec::encode(&record, published, &mut out);
        out
    }

    /// Logs `ids` as one frame, from cursor `first` on.
    fn frame(wal: &mut Wal, first: u64, ids: &[&str]) {
        let mut payload = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let deadline = (n == 0).then_some(42);
            put_entry(&mut payload, first + n as u64, deadline, &value(id, 7));
        }
        wal.append(first, &payload).unwrap();
    }

    fn cursors(dir: &Path) -> Vec<u64> {
        read_all(dir)
            .unwrap()
            .iter()
            .map(|logged| logged.cursor)
            .collect()
    }

    fn newest_segment(dir: &Path) -> PathBuf {
        segments(dir).unwrap().pop().unwrap().1
    }

    #[test]
    fn frames_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), 1).unwrap();
        frame(&mut wal, 1, &["a", "b"]);
        frame(&mut wal, 3, &["c"]);
        let logged = read_all(dir.path()).unwrap();
        assert_eq!(cursors(dir.path()), [1, 2, 3]);
        assert_eq!(logged[0].deadline, Some(42));
        assert_eq!(logged[1].deadline, None);
        assert_eq!(codec::decode_id(&logged[2].value).unwrap(), "c");
    }

    #[test]
    fn a_torn_or_damaged_last_frame_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), 1).unwrap();
        frame(&mut wal, 1, &["a"]);
        let one = wal.offset as usize;
        frame(&mut wal, 2, &["b", "c"]);
        let two = wal.offset as usize;
        let path = newest_segment(dir.path());
        let whole = std::fs::read(&path).unwrap();
        assert!(whole.len() > two, "extended ahead with zeros");
        assert_eq!(cursors(dir.path()), [1, 2, 3]);
        for cut in [one, one + 3, one + FRAME_HEADER + 2, two - 1] {
            // Written only up to `cut`: the zeros ahead are still there.
            let mut torn = whole.clone();
            torn[cut..two].fill(0);
            std::fs::write(&path, &torn).unwrap();
            assert_eq!(cursors(dir.path()), [1], "torn at {cut}");
            // Or the file ends there (the extension was not durable yet).
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert_eq!(cursors(dir.path()), [1], "cut at {cut}");
        }
        // A flipped bit fails the checksum.
        let mut damaged = whole.clone();
        damaged[two - 1] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert_eq!(cursors(dir.path()), [1]);
    }

    #[test]
    fn damage_before_the_newest_segment_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), 1).unwrap();
        frame(&mut wal, 1, &["a"]);
        let end = wal.offset as usize;
        let old = newest_segment(dir.path());
        let mut wal = Wal::create(dir.path(), 2).unwrap();
        frame(&mut wal, 2, &["b"]);
        let mut bytes = std::fs::read(&old).unwrap();
        bytes[end - 1] ^= 1;
        std::fs::write(&old, &bytes).unwrap();
        let error = read_all(dir.path()).unwrap_err();
        assert_eq!(error.kind(), herald_store::ErrorKind::Corrupt, "{error}");
    }

    #[test]
    fn covered_segments_are_removed_but_never_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for first in [1, 11, 21] {
            let mut wal = Wal::create(dir.path(), first).unwrap();
            frame(&mut wal, first, &["x"]);
        }
        let firsts = |dir: &Path| -> Vec<u64> {
            segments(dir)
                .unwrap()
                .into_iter()
                .map(|(first, _)| first)
                .collect()
        };
        remove_through(dir.path(), 9);
        assert_eq!(firsts(dir.path()), [1, 11, 21]);
        remove_through(dir.path(), 10);
        assert_eq!(firsts(dir.path()), [11, 21]);
        remove_through(dir.path(), u64::MAX);
        assert_eq!(firsts(dir.path()), [21]);
    }

    /// What a crash leaves when appends were answered but not yet indexed:
    /// the log has them and redb does not. Opening copies them in.
    #[tokio::test]
    async fn open_replays_what_redb_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path(), DiskOptions::default()).unwrap();
        let first = store
            .append(herald_store::testkit::sample("a"))
            .await
            .unwrap();
        store.close().await.unwrap();
        drop(store);
        // As if the process died right after logging b, c and d.
        let mut wal = Wal::create(&dir_of(dir.path()), 2).unwrap();
        frame(&mut wal, 2, &["b", "c"]);
        frame(&mut wal, 4, &["d"]);
        drop(wal);

        let store = DiskStore::open(dir.path(), DiskOptions::default()).unwrap();
        let ids: Vec<String> = store
            .read_after(Cursor::ZERO, 10)
            .await
            .unwrap()
            .iter()
            .map(|record| record.id.to_string())
            .collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert_eq!(store.resolve("c").await.unwrap(), Some(Cursor::new(3)));
        assert_eq!(first.cursor, Cursor::new(1));
        // The next cursor follows the replayed ones; the old log is gone.
        let next = store
            .append(herald_store::testkit::sample("e"))
            .await
            .unwrap();
        assert_eq!(next.cursor, Cursor::new(5));
        assert_eq!(segments(&dir_of(dir.path())).unwrap().len(), 1);
        store.close().await.unwrap();
    }
}

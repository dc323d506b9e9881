//! The Lua scripts: every step that must be atomic across nodes.
//!
//! Redis runs a script to completion before any other command, so what one
//! script does is one indivisible step for every node sharing the log. A
//! `MULTI`/`EXEC` transaction was rejected for appends: it cannot branch on
//! what it read (the duplicate-id check must refuse the whole batch), and
//! `WATCH` with retries would make concurrent publishers retry each other.
//!
//! Numbers: Lua 5.1 (Redis's) has only doubles, so cursors and timestamps
//! are formatted with `%.0f`, exact below 2^53 (see the crate's `# Limits`).
//!
//! # A log that went back
//!
//! The scripts that append, follow or read the head first run [`RESTORE`]
//! with the highest cursor the calling node has seen (its *floor*). A
//! counter below the floor means Redis lost records it had acknowledged: it
//! restarted without its data (no persistence), or with the tail of its AOF
//! missing (`appendfsync everysec`), or the keys were deleted. Left alone,
//! the counter would hand out cursors again that nodes already dispatched,
//! and their followers, waiting after the old head, would never see the new
//! records. So the script moves the counter up to the floor and raises the
//! trim mark to it: the lost cursors are never reused, and whoever still
//! needed them is told of a gap exactly as for records trimmed by
//! retention. Each script returns the old counter when it did this (else
//! `-1`), so the node can log it.

use std::sync::LazyLock;

use redis::Script;

/// The restore step every script below starts with (see the module docs).
/// `restore(seq_key, trimmed_key, floor)` returns the old counter if it was
/// behind `floor` (and now is not), else `-1`.
const RESTORE: &str = r#"
local function restore(seq_key, trimmed_key, floor)
  local seq = tonumber(redis.call('GET', seq_key) or '0')
  if seq >= floor then return -1 end
  local mark = string.format('%.0f', floor)
  redis.call('SET', seq_key, mark)
  if tonumber(redis.call('GET', trimmed_key) or '0') < floor then
    redis.call('SET', trimmed_key, mark)
  end
  return seq
end
"#;

/// A script that starts with [`RESTORE`].
fn restoring(body: &str) -> Script {
    Script::new(&format!("{RESTORE}{body}"))
}

/// Appends a batch, all or nothing.
///
/// KEYS: log, seq, ids, last_ts, trimmed, expiry. ARGV: floor, count,
/// then per record: id, private (`0`/`1`), topics (encoded), frame,
/// keep_for in microseconds (`-1`: none; a deadline goes into `expiry`,
/// scored by time, member the cursor). Returns
/// `{0, id, restored}` if `id` is retained or repeats in the batch (nothing stored),
/// else `{1, last_cursor, ts, restored}`: the batch got the cursors
/// `last_cursor - count + 1 ..= last_cursor` and the one stamp `ts`
/// (microseconds since the epoch, Redis's clock, clamped so it never goes
/// back); `restored` is [`RESTORE`]'s answer.
pub(crate) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    restoring(
        r#"
local restored = restore(KEYS[2], KEYS[5], tonumber(ARGV[1]))
local count = tonumber(ARGV[2])
local seen = {}
for i = 0, count - 1 do
  local id = ARGV[3 + i * 5]
  if seen[id] or redis.call('HEXISTS', KEYS[3], id) == 1 then
    return {0, id, restored}
  end
  seen[id] = true
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local last_ts = tonumber(redis.call('GET', KEYS[4]) or '0')
if now < last_ts then now = last_ts end
local ts = string.format('%.0f', now)
redis.call('SET', KEYS[4], ts)
local cursor = '0'
for i = 0, count - 1 do
  local at = 3 + i * 5
  cursor = string.format('%.0f', redis.call('INCR', KEYS[2]))
  redis.call('XADD', KEYS[1], '0-' .. cursor,
    'id', ARGV[at], 'ts', ts, 'private', ARGV[at + 1],
    'topics', ARGV[at + 2], 'frame', ARGV[at + 3])
  redis.call('HSET', KEYS[3], ARGV[at], cursor)
  local keep = tonumber(ARGV[at + 4])
  if keep >= 0 then
    redis.call('ZADD', KEYS[6], string.format('%.0f', now + keep), cursor)
  end
end
return {1, cursor, ts, restored}
"#,
    )
});

/// Records after a cursor with the trim mark, in one consistent view: what
/// [`read_after`](herald_store::Store::read_after) returns, and what a
/// follower needs to tell a gap from the end of the log.
///
/// KEYS: log, trimmed, seq. ARGV: floor, after (a cursor, or empty for
/// "past the end"), count. Returns `{trimmed_through, entries, restored}`:
/// the entries after both `after` and the trim mark (records at or below
/// the mark are trimmed, even while a sweep has yet to remove them).
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    restoring(
        r#"
local restored = restore(KEYS[3], KEYS[2], tonumber(ARGV[1]))
local trimmed = redis.call('GET', KEYS[2]) or '0'
if ARGV[2] == '' then return {trimmed, {}, restored} end
local from = ARGV[2]
if tonumber(trimmed) > tonumber(from) then from = trimmed end
return {trimmed, redis.call('XRANGE', KEYS[1], '(0-' .. from, '+', 'COUNT', ARGV[3]), restored}
"#,
    )
});

/// The cursor an id names, if its record is retained.
///
/// KEYS: ids, trimmed. ARGV: id. Returns the cursor, or nil.
pub(crate) static RESOLVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cursor = redis.call('HGET', KEYS[1], ARGV[1])
if not cursor or tonumber(cursor) <= tonumber(redis.call('GET', KEYS[2]) or '0') then
  return false
end
return cursor
"#,
    )
});

/// The record an id names, in one step (the index and the stream agree).
///
/// KEYS: log, ids, trimmed. ARGV: id. Returns nil, or the `XRANGE` of its
/// one entry.
pub(crate) static RESOLVE_RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cursor = redis.call('HGET', KEYS[2], ARGV[1])
if not cursor or tonumber(cursor) <= tonumber(redis.call('GET', KEYS[3]) or '0') then
  return false
end
local id = '0-' .. cursor
return redis.call('XRANGE', KEYS[1], id, id)
"#,
    )
});

/// The head and the oldest retained entry id (above the trim mark).
///
/// KEYS: log, seq, trimmed. ARGV: floor. Returns `{restored, head}` or
/// `{restored, head, oldest_entry_id}`.
pub(crate) static BOUNDS: LazyLock<Script> = LazyLock::new(|| {
    restoring(
        r#"
local restored = restore(KEYS[2], KEYS[3], tonumber(ARGV[1]))
local head = redis.call('GET', KEYS[2]) or '0'
local trimmed = redis.call('GET', KEYS[3]) or '0'
local first = redis.call('XRANGE', KEYS[1], '(0-' .. trimmed, '+', 'COUNT', 1)
if first[1] then return {restored, head, first[1][1]} end
return {restored, head}
"#,
    )
});

/// Removes at most `chunk` records: from the oldest end, first those at
/// or below the trim mark (left by a restore), then those beyond
/// `max_events`, then those older than `max_age`; then, anywhere in the
/// log, those whose deadline in `expiry` has passed. Their index entries go
/// too (only where the index still names that record). The trim mark only
/// ever rises, and only for the oldest-end part: expired records are not a
/// gap.
///
/// KEYS: log, ids, trimmed, expiry. ARGV: max_events (`-1`: none),
/// max_age in microseconds (`-1`: none), chunk. Returns `{removed, work}`:
/// how many records were removed, and how many steps it took (a deadline
/// whose record was already gone is a step); `work` below `chunk` means
/// nothing more is due.
pub(crate) static TRIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local max_events = tonumber(ARGV[1])
local max_age = tonumber(ARGV[2])
local chunk = tonumber(ARGV[3])
local mark = redis.call('GET', KEYS[3]) or '0'
local removed = 0
local last = nil
local function field(entry, name)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end
local function drop(entry)
  local cursor = string.sub(entry[1], 3)
  local id = field(entry, 'id')
  if id and redis.call('HGET', KEYS[2], id) == cursor then
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('XDEL', KEYS[1], entry[1])
  redis.call('ZREM', KEYS[4], cursor)
  removed = removed + 1
  return cursor
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '0-' .. mark, 'COUNT', chunk)) do
  last = drop(entry)
end
if max_events >= 0 and removed < chunk then
  local excess = redis.call('XLEN', KEYS[1]) - max_events
  if excess > chunk - removed then excess = chunk - removed end
  if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
      last = drop(entry)
    end
  end
end
if max_age >= 0 and removed < chunk then
  local time = redis.call('TIME')
  local cutoff = tonumber(time[1]) * 1000000 + tonumber(time[2]) - max_age
  local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', chunk - removed)
  for _, entry in ipairs(entries) do
    local ts = tonumber(field(entry, 'ts') or '')
    if ts and ts < cutoff then last = drop(entry) else break end
  end
end
local work = removed
if work < chunk then
  local time = redis.call('TIME')
  local now = string.format('%.0f', tonumber(time[1]) * 1000000 + tonumber(time[2]))
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, chunk - work)
  for _, cursor in ipairs(due) do
    local entry_id = '0-' .. cursor
    local entries = redis.call('XRANGE', KEYS[1], entry_id, entry_id)
    if entries[1] then drop(entries[1]) else redis.call('ZREM', KEYS[4], cursor) end
    work = work + 1
  end
end
if last and tonumber(last) > tonumber(mark) then
  redis.call('SET', KEYS[3], last)
end
return {removed, work}
"#,
    )
});

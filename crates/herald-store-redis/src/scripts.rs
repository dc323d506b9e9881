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

use std::sync::LazyLock;

use redis::Script;

/// Appends a batch, all or nothing.
///
/// KEYS: log, seq, ids, last_ts. ARGV: count, then per record: id, private
/// (`0`/`1`), topics (encoded), frame. Returns `{0, id}` if `id` is retained
/// or repeats in the batch (nothing stored), else `{1, last_cursor, ts}`:
/// the batch got the cursors `last_cursor - count + 1 ..= last_cursor` and
/// the one stamp `ts` (microseconds since the epoch, Redis's clock, clamped
/// so it never goes back).
pub(crate) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local count = tonumber(ARGV[1])
local seen = {}
for i = 0, count - 1 do
  local id = ARGV[2 + i * 4]
  if seen[id] or redis.call('HEXISTS', KEYS[3], id) == 1 then
    return {0, id}
  end
  seen[id] = true
end
local time = redis.call('TIME')
local ts = tonumber(time[1]) * 1000000 + tonumber(time[2])
local last_ts = tonumber(redis.call('GET', KEYS[4]) or '0')
if ts < last_ts then ts = last_ts end
ts = string.format('%.0f', ts)
redis.call('SET', KEYS[4], ts)
local cursor = '0'
for i = 0, count - 1 do
  local at = 2 + i * 4
  cursor = string.format('%.0f', redis.call('INCR', KEYS[2]))
  redis.call('XADD', KEYS[1], '0-' .. cursor,
    'id', ARGV[at], 'ts', ts, 'private', ARGV[at + 1],
    'topics', ARGV[at + 2], 'frame', ARGV[at + 3])
  redis.call('HSET', KEYS[3], ARGV[at], cursor)
end
return {1, cursor, ts}
"#,
    )
});

/// One consistent view for a follower: the trim mark and the next entries.
///
/// KEYS: log, trimmed. ARGV: exclusive start (`(0-<cursor>`, or empty for
/// "past the end"), count. Returns `{trimmed_through, entries}`.
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local trimmed = redis.call('GET', KEYS[2]) or '0'
if ARGV[1] == '' then return {trimmed, {}} end
return {trimmed, redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])}
"#,
    )
});

/// The record an id names, in one step (the index and the stream agree).
///
/// KEYS: log, ids. ARGV: id. Returns nil, or the `XRANGE` of its one entry.
pub(crate) static RESOLVE_RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cursor = redis.call('HGET', KEYS[2], ARGV[1])
if not cursor then return false end
local id = '0-' .. cursor
return redis.call('XRANGE', KEYS[1], id, id)
"#,
    )
});

/// The head and the oldest retained entry id.
///
/// KEYS: log, seq. Returns `{head}` or `{head, oldest_entry_id}`.
pub(crate) static BOUNDS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local head = redis.call('GET', KEYS[2]) or '0'
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if first[1] then return {head, first[1][1]} end
return {head}
"#,
    )
});

/// Trims at most `chunk` records from the oldest end: first beyond
/// `max_events`, then older than `max_age`, removing their index entries
/// (only where the index still names that record) and raising the trim mark.
///
/// KEYS: log, ids, trimmed. ARGV: max_events (`-1`: none), max_age in
/// microseconds (`-1`: none), chunk. Returns how many were removed; fewer
/// than `chunk` means nothing more is due.
pub(crate) static TRIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local max_events = tonumber(ARGV[1])
local max_age = tonumber(ARGV[2])
local chunk = tonumber(ARGV[3])
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
  last = cursor
  removed = removed + 1
end
if max_events >= 0 then
  local excess = redis.call('XLEN', KEYS[1]) - max_events
  if excess > chunk then excess = chunk end
  if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
      drop(entry)
    end
  end
end
if max_age >= 0 and removed < chunk then
  local time = redis.call('TIME')
  local cutoff = tonumber(time[1]) * 1000000 + tonumber(time[2]) - max_age
  local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', chunk - removed)
  for _, entry in ipairs(entries) do
    local ts = tonumber(field(entry, 'ts') or '')
    if ts and ts < cutoff then drop(entry) else break end
  end
end
if last then redis.call('SET', KEYS[3], last) end
return removed
"#,
    )
});

//! Lua scripts run atomically inside Redis. Every script reads the clock
//! with `TIME` so all nodes share Redis' clock, not their own.

/// GCRA rate limiter. KEYS[1] holds the theoretical arrival time (µs).
/// ARGV[1] = emission interval (µs), ARGV[2] = tolerance (µs). Returns 0
/// when the slot is granted, else the µs to wait before asking again.
/// The tolerance lets a slot missed by a few ms of scheduling jitter be made
/// up later, so the long-run rate is the configured one, never more than
/// `1 + tolerance/interval` slots in any instant.
pub const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - tau > now then
  return math.floor(tat - tau - now) + 1
end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.floor((new - now) / 1000) + 2000)
return 0
"#;

/// Lease-based counter: a sorted set of slots scored by lease expiry (ms).
/// KEYS[1] set; ARGV[1] member; ARGV[2] cap; ARGV[3] lease (ms).
/// Returns 1 when the slot is held, 0 when the cap is reached.
/// Expired slots (a dead node stopped renewing) are dropped first.
pub const SLOT_ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 3)
return 1
"#;

/// Renew this node's slots of one set. KEYS[1] set; ARGV[1] lease (ms);
/// ARGV[2] `1` = re-register missing members (after Redis came back),
/// `0` = only extend existing ones (so a slot released meanwhile is not
/// resurrected); ARGV[3..] members.
pub const SLOT_RENEW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = now + tonumber(ARGV[1])
local n = 0
for i = 3, #ARGV do
  if ARGV[2] == '1' then
    redis.call('ZADD', KEYS[1], exp, ARGV[i])
  else
    redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[i])
  end
  n = n + 1
end
if n > 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 3) end
return n
"#;

/// Per-callee limiter across nodes. KEYS[1] sorted set of dial times (ms)
/// of one number; ARGV[1] member (the attempt's uuid); ARGV[2] number of
/// limits; then pairs (max calls, window ms). Returns {1, 0, -1} when the
/// dial is allowed (and recorded), else {0, ms until allowed, limit index}.
pub const CALLEE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[2])
local longest = 1000
for i = 0, n - 1 do
  local max = tonumber(ARGV[3 + 2 * i])
  local per = tonumber(ARGV[4 + 2 * i])
  if per > longest then longest = per end
  local c = redis.call('ZCOUNT', KEYS[1], now - per, '+inf')
  if c >= max then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], now - per, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return {0, math.floor(tonumber(oldest[2]) + per - now), i}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], longest)
return {1, 0, -1}
"#;

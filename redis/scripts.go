package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts run atomically on the primary that owns the resource's slot.
// In the scripts of one resource, KEYS[1] is the leader key and KEYS[2],
// where used, the term counter; the scripts of a lease are described below.
// A record is "ours" when it starts with the session's token and a newline.
// PUBLISH goes through redis.pcall: a user whose ACL lacks the channel still
// acquires and releases; its followers then wake on their timers instead.

// acquireScript takes the leadership if nobody holds it: it raises the term
// counter to ARGV[4] (the highest term the caller has seen) if it is lower,
// increments it, stores the record with SET NX PX, and announces it. If this
// token already holds it, it restarts the TTL. It returns {1, record} when
// the caller holds the leadership, else {0, current record}. Terms stay
// decimal strings: Lua's numbers are exact only up to 2^53.
//
// A claim of a lease passes the lease key as KEYS[3]: the record then
// expires with the lease (its TTL is the lease key's, not ARGV[2]), and the
// leader key joins the lease's set, whose renewals extend it. Where the
// server has PEXPIRETIME (Redis 7.0 and later), the record expires at the
// very millisecond of the lease key; elsewhere it gets the lease key's
// remaining TTL, and may outlive it by the time the script takes. The
// script returns {-1, ""} if the lease key is gone: the lease was lost.
//
// ARGV: token, TTL in ms, payload (ID "\n" value), term floor, channel.
var acquireScript = goredis.NewScript(`
local unit, ttl = 'PX', ARGV[2]
if KEYS[3] then
  local left = redis.call('PTTL', KEYS[3])
  if left <= 0 then
    return {-1, ''}
  end
  local at = redis.pcall('PEXPIRETIME', KEYS[3])
  if type(at) == 'number' and at > 0 then
    unit, ttl = 'PXAT', at
  else
    ttl = left
  end
end
local cur = redis.call('GET', KEYS[1])
if cur then
  if string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. '\n' then
    if unit == 'PXAT' then
      redis.call('PEXPIREAT', KEYS[1], ttl)
    else
      redis.call('PEXPIRE', KEYS[1], ttl)
    end
    return {1, cur}
  end
  return {0, cur}
end
local c = redis.call('GET', KEYS[2])
if c and not string.match(c, '^%d+$') then
  return redis.error_reply('ERR the term counter ' .. KEYS[2] .. ' holds a value that is not a non-negative integer')
end
if not c or #c < #ARGV[4] or (#c == #ARGV[4] and c < ARGV[4]) then
  redis.call('SET', KEYS[2], ARGV[4])
end
redis.call('INCR', KEYS[2])
local rec = ARGV[1] .. '\n' .. redis.call('GET', KEYS[2]) .. '\n' .. ARGV[3]
redis.call('SET', KEYS[1], rec, 'NX', unit, ttl)
if KEYS[3] then
  redis.call('SADD', KEYS[3], KEYS[1])
end
redis.pcall('PUBLISH', ARGV[5], 'acquired')
return {1, rec}
`)

// renewScript restarts the TTL of the record if it is still ours. It
// returns 1 if it was, else 0.
//
// ARGV: token "\n", TTL in ms.
var renewScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseScript deletes the record if it is still ours and announces the
// release. A session that led (ARGV[3] "1") and finds the record gone,
// deleted or flushed from outside, announces that too: followers that no
// keyspace event told then learn it now rather than by their timers. A
// claim of a lease passes the lease key as KEYS[2], and the leader key
// leaves the lease's set. It returns 1 if it deleted the record, else 0.
//
// ARGV: token "\n", channel, "1" if the session led.
var releaseScript = goredis.NewScript(`
if KEYS[2] then
  redis.call('SREM', KEYS[2], KEYS[1])
end
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.pcall('PUBLISH', ARGV[2], 'released')
  return 1
end
if not cur and ARGV[3] == '1' then
  redis.pcall('PUBLISH', ARGV[2], 'released')
end
return 0
`)

// readScript reads the leadership in one step: {1, record, PTTL in ms} when
// held, else {0, term counter}.
var readScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  return {1, cur, redis.call('PTTL', KEYS[1])}
end
return {0, redis.call('GET', KEYS[2]) or '0'}
`)

// raiseScript raises the term counter to ARGV[1] if it is lower, so that
// the next acquisition issues a greater term. Both are compared as decimal
// strings, exact at any size. It returns 1 if it raised the counter.
var raiseScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and not string.match(cur, '^%d+$') then
  return redis.error_reply('ERR the term counter ' .. KEYS[1] .. ' holds a value that is not a non-negative integer')
end
if not cur or #cur < #ARGV[1] or (#cur == #ARGV[1] and cur < ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// The scripts of a lease (an emulated store session shared by many
// resources) touch the lease key, KEYS[1], and every leader key in its set,
// whose names they read from the set. A leader key's release-notice channel
// is its name with "leader" replaced by "events" (see keys). The lease key
// is a set with one member besides the leader keys, the empty string, so
// that it exists while the lease holds nothing.

// leaseCreateScript creates the lease key with its TTL. It returns 1, or 0
// if the key exists already.
//
// ARGV: TTL in ms.
var leaseCreateScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SADD', KEYS[1], '')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// leaseRenewScript extends the lease key and every leader key of its set
// still ours by the TTL, and drops from the set the leader keys that are
// no longer ours (expired, deleted or overwritten from outside). Where the
// server has PEXPIRETIME (Redis 7.0 and later), every leader key then
// expires at the very millisecond of the lease key; elsewhere each gets the
// TTL from its own moment in the script, and the lease key is extended
// again last, so that none outlives it. It returns {0} if the lease key is
// gone, else {1, dropped key...}.
//
// ARGV: token "\n", TTL in ms.
var leaseRenewScript = goredis.NewScript(`
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  return {0}
end
local at = redis.pcall('PEXPIRETIME', KEYS[1])
if type(at) ~= 'number' or at <= 0 then
  at = nil
end
local out = {1}
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if k ~= '' then
    local cur = redis.call('GET', k)
    if cur and string.sub(cur, 1, #ARGV[1]) == ARGV[1] then
      if at then
        redis.call('PEXPIREAT', k, at)
      else
        redis.call('PEXPIRE', k, ARGV[2])
      end
    else
      redis.call('SREM', KEYS[1], k)
      out[#out + 1] = k
    end
  end
end
if not at then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return out
`)

// leaseCloseScript deletes every leader key of the lease's set still ours,
// announcing each release, and then the lease key. It returns the number
// of records it deleted.
//
// ARGV: token "\n".
var leaseCloseScript = goredis.NewScript(`
local n = 0
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if k ~= '' then
    local cur = redis.call('GET', k)
    if cur and string.sub(cur, 1, #ARGV[1]) == ARGV[1] then
      redis.call('DEL', k)
      redis.pcall('PUBLISH', string.sub(k, 1, #k - 6) .. 'events', 'released')
      n = n + 1
    end
  end
end
redis.call('DEL', KEYS[1])
return n
`)

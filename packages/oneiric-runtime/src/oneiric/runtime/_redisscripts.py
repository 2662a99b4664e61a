"""The Lua scripts of ``RedisCheckpointStore``: each conditional update is one atomic script.

Redis runs a script without interleaving another command, so "check the
node's status and attempt, then write" cannot race with a zombie executor on
another machine (guarantee 1 of ``CheckpointStore``).  Node fields live in one
hash per run as ``<node>\\x1f<field>``: ``s`` status, ``a`` attempts (decimal),
``o`` output JSON, ``e`` error JSON, ``b``/``f`` started/finished (JSON
numbers); ``\\x1forder`` is the definition order.  Scripts compare and copy
these strings and never decode a float (Lua's cjson would round timestamps).
"""

from __future__ import annotations

__all__ = ["ADVANCE", "CREATE", "FINISH", "RELEASE", "RENEW", "RESET", "SET_RUN", "SKIP",
           "START"]

# HSET in chunks: unpack() of a very large table overflows Lua's C stack.
_HSET_CHUNKS = """
local function hset_all(key, flat)
  local i = 1
  while i <= #flat do
    local chunk = {}
    for j = i, math.min(i + 999, #flat) do chunk[#chunk + 1] = flat[j] end
    redis.call('HSET', key, unpack(chunk))
    i = i + 1000
  end
end
"""

#: KEYS run, nodes, runs-index; ARGV run_id, score, order JSON, n_fields, fields..., nodes...
CREATE = _HSET_CHUNKS + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local nf = tonumber(ARGV[4])
local fields = {}
for i = 5, 4 + 2 * nf do fields[#fields + 1] = ARGV[i] end
hset_all(KEYS[1], fields)
local nodes = {'\\31order', ARGV[3]}
for i = 5 + 2 * nf, #ARGV do
  nodes[#nodes + 1] = ARGV[i] .. '\\31s'; nodes[#nodes + 1] = 'pending'
  nodes[#nodes + 1] = ARGV[i] .. '\\31a'; nodes[#nodes + 1] = '0'
end
hset_all(KEYS[2], nodes)
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

_CHECKS = """
local function can_start(key, node, attempt)
  local s = redis.call('HGET', key, node .. '\\31s')
  if not s or s == 'succeeded' then return false end
  return tonumber(redis.call('HGET', key, node .. '\\31a')) < tonumber(attempt)
end
local function is_running(key, node, attempt)
  return redis.call('HGET', key, node .. '\\31s') == 'running'
     and redis.call('HGET', key, node .. '\\31a') == attempt
end
local function start(key, node, attempt, now)
  redis.call('HSET', key, node .. '\\31s', 'running', node .. '\\31a', attempt,
             node .. '\\31b', now)
  redis.call('HDEL', key, node .. '\\31f', node .. '\\31o', node .. '\\31e')
end
local function finish(key, node, status, output, err, now)
  redis.call('HSET', key, node .. '\\31s', status, node .. '\\31f', now)
  if output == '' then redis.call('HDEL', key, node .. '\\31o')
  else redis.call('HSET', key, node .. '\\31o', output) end
  if err == '' then redis.call('HDEL', key, node .. '\\31e')
  else redis.call('HSET', key, node .. '\\31e', err) end
end
"""

#: KEYS nodes; ARGV node, attempt, now
START = _CHECKS + """
if not can_start(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
start(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
"""

#: KEYS nodes; ARGV node, attempt, status, output JSON or '', error JSON or '', now
FINISH = _CHECKS + """
if not is_running(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
finish(KEYS[1], ARGV[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return 1
"""

#: KEYS nodes; ARGV now, k, k x (node, attempt, output JSON or ''), then (node, attempt)...
ADVANCE = _CHECKS + """
local k = tonumber(ARGV[2])
local first_start = 3 + 3 * k
for i = 3, first_start - 1, 3 do
  if not is_running(KEYS[1], ARGV[i], ARGV[i + 1]) then return 0 end
end
for i = first_start, #ARGV, 2 do
  if not can_start(KEYS[1], ARGV[i], ARGV[i + 1]) then return 0 end
end
for i = 3, first_start - 1, 3 do
  finish(KEYS[1], ARGV[i], 'succeeded', ARGV[i + 2], '', ARGV[1])
end
for i = first_start, #ARGV, 2 do start(KEYS[1], ARGV[i], ARGV[i + 1], ARGV[1]) end
return 1
"""

#: KEYS run, nodes; ARGV node ids.  -1: no such run.
RESET = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local order = cjson.decode(redis.call('HGET', KEYS[2], '\\31order'))
local added = false
for i = 1, #ARGV do
  local n = ARGV[i]
  local s = redis.call('HGET', KEYS[2], n .. '\\31s')
  if not s then
    redis.call('HSET', KEYS[2], n .. '\\31s', 'pending', n .. '\\31a', '0')
    order[#order + 1] = n
    added = true
  elseif s ~= 'succeeded' then
    redis.call('HSET', KEYS[2], n .. '\\31s', 'pending')
    redis.call('HDEL', KEYS[2], n .. '\\31o', n .. '\\31e', n .. '\\31b', n .. '\\31f')
  end
end
if added then redis.call('HSET', KEYS[2], '\\31order', cjson.encode(order)) end
return 1
"""

#: KEYS run, nodes; ARGV reason JSON, now, node ids.  -1: no such run.
SKIP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
for i = 3, #ARGV do
  local n = ARGV[i]
  local s = redis.call('HGET', KEYS[2], n .. '\\31s')
  if s and s ~= 'succeeded' then
    redis.call('HSET', KEYS[2], n .. '\\31s', 'skipped', n .. '\\31e', ARGV[1],
               n .. '\\31f', ARGV[2])
    redis.call('HDEL', KEYS[2], n .. '\\31o')
  end
end
return 1
"""

#: KEYS run; ARGV field, value, ...  The whole record after the change, or -1.
SET_RUN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return redis.call('HGETALL', KEYS[1])
"""

#: KEYS lease; ARGV token, milliseconds.  Extend only a lease this holder still has.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: KEYS lease; ARGV token.  Release only a lease this holder still has.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

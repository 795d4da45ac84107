"""The queries of the Redis router (`RoutingQueries`): scripts that read and change
nothing, so that a position or a queue's figures are read in one consistent moment.

Each runs after `scripts.PRELUDE`.
"""

from __future__ import annotations

POSITION = """
local c = k("c", ARGV[4])
if redis.call("EXISTS", c) == 0 or not waiting_state(c) then return false end
return redis.call("ZRANK", k("w", hget(c, "queue")), hget(c, "wkey")) + 1
"""

WAITING = """
local out = {}
for _, m in ipairs(redis.call("ZRANGE", k("w", ARGV[4]), 0, -1)) do
  local cid = tail(m)
  local term = redis.call("HGET", k("c", cid), "term")
  out[#out + 1] = cid
  out[#out + 1] = term
  out[#out + 1] = hget(k("c", cid), "vis") or ""
  out[#out + 1] = redis.call("HGET", k("sq"), caller(k("c", cid)))  -- positions are as of it
end
return out
"""

SNAPSHOT = """
local out = {}
for i = 4, #ARGV do  -- every queue asked for, read in one moment and one round trip
  local q = ARGV[i]
  local oldest = redis.call("ZRANGE", k("ws", q), 0, 0, "WITHSCORES")
  out[#out + 1] = {redis.call("ZCARD", k("w", q)), oldest[2] or false,
    redis.call("ZCARD", k("av", q)), redis.call("HGETALL", k("n", q)),
    redis.call("HGET", k("ht"), q)}
end
return out
"""

CALLS_OF_TERMINAL = """
local out = {}
for _, cid in ipairs(redis.call("SMEMBERS", k("tc", ARGV[4]))) do
  if redis.call("EXISTS", k("c", cid)) == 1 then
    out[#out + 1] = redis.call("HGETALL", k("c", cid))
  end
end
return out
"""

"""The specialists' transactions of the Redis router: log in and out, connection,
available/away, end of wrap-up (twins of the `CallCenter` methods of the same names).

Each runs after `scripts.PRELUDE` (fields of an agent hash: see `scripts.py`).
"""

from __future__ import annotations

AGENT_JOIN = """
local aid = ARGV[4]
local a = k("a", aid)
if redis.call("EXISTS", a) == 1 then
  redis.call("HSET", a, "conn", "1")
  index(aid)
  return redis.call("HGETALL", a)
end
local sq = {}
for i = 7, #ARGV, 2 do
  sq[#sq + 1] = ARGV[i]
  redis.call("HSET", a, "s:" .. ARGV[i], ARGV[i + 1])
end
redis.call("HSET", a, "id", aid, "blob", ARGV[5], "conn", ARGV[6], "sq", table.concat(sq, SEP),
  "state", "away", "idle", NOW, "ikey", NOWKEY, "answered", "0", "streak", "0", "call", "",
  "loff", NOW, "okey", NOWKEY)
for _, q in ipairs(sq) do
  redis.call("HINCRBY", k("n", q), "away", 1)
  redis.call("HINCRBY", k("n", q), "logged_in", 1)
end
index(aid)
return redis.call("HGETALL", a)
"""

AGENT_LEAVE = """
local aid = ARGV[4]
local a = k("a", aid)
if redis.call("EXISTS", a) == 0 then return false end
local out = redis.call("HGETALL", a)
local state = hget(a, "state")
for _, q in ipairs(split(hget(a, "sq"))) do
  local m = hget(a, "m:" .. q)
  if m then redis.call("ZREM", k("av", q), m) end
  redis.call("HINCRBY", k("n", q), state, -1)
  redis.call("HINCRBY", k("n", q), "logged_in", -1)
end
redis.call("DEL", a)
return out
"""

SET_CONNECTED = """
local a = k("a", ARGV[4])
if redis.call("EXISTS", a) == 1 then
  redis.call("HSET", a, "conn", ARGV[5])
  index(ARGV[4])
end
return 1
"""

SET_STATUS = """
local aid, status = ARGV[4], ARGV[5]
local a = k("a", aid)
if redis.call("EXISTS", a) == 0 then
  refuse("not_logged_in", "specialist " .. aid .. " is not logged in")
end
local old = hget(a, "state")
if old == "ringing" or old == "in_call" then
  refuse("busy", "cannot change status while " .. old)
end
if old == status then return false end
if status == "available" then redis.call("HSET", a, "streak", "0") end
set_state(aid, status)
tell_agent(aid)
return old
"""

WRAPUP_DONE = """
local a = k("a", ARGV[4])
if redis.call("EXISTS", a) == 0 or hget(a, "state") ~= "wrap_up" then return 0 end
set_state(ARGV[4], "available")
tell_agent(ARGV[4])
return 1
"""

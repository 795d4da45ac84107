"""The Lua scripts of a specialist's answers to an offer: accept, decline, and the offer
taken back (ring timeout, withdrawal); the Redis twins of `CallCenter.accept`, `decline`,
`timeout` and `withdraw` (signaling/acd.py). Runs after `scripts.PRELUDE`.

Safe to run again after a lost reply: `ACCEPT` (below), and `DECLINE`, `TIMEOUT` and
`WITHDRAW` for the same attempt (`replay.py`).
"""

from __future__ import annotations

# `acc` names this answer (specialist and the step's time, the same on each attempt) and
# `atold` keeps the numbers it took: the same attempt again, its reply lost with the
# connection (`offers.accept` retries), answers the same, numbers included, and changes
# nothing; any other answer of a call no longer ringing is refused.
ACCEPT = """
local cid, aid = ARGV[4], ARGV[5]
local c = k("c", cid)
if not rings(c, aid, ARGV[6]) and hget(c, "acc") == aid .. SEP .. NOW
    and hget(c, "state") == "connected" and has(split(hget(c, "agents")), aid) then
  local told = split(hget(c, "atold"))
  for i = 1, #told, 2 do
    TOLD[#TOLD + 1] = told[i]
    TOLD[#TOLD + 1] = tonumber(told[i + 1])
  end
  return redis.call("HGETALL", c)
end
ringing(cid, aid, ARGV[6])
local a = k("a", aid)
unwait(cid)
redis.call("HSET", c, "state", "connected", "ring", "")
append(c, "agents", aid)
if not hget(c, "ans") then redis.call("HSET", c, "ans", NOW) end
redis.call("HSET", a, "streak", "0", "call", cid)
redis.call("HINCRBY", a, "answered", 1)
set_state(aid, "in_call")
tell_call(c)
redis.call("HSET", c, "acc", aid .. SEP .. NOW, "atold", table.concat(TOLD, SEP))
return redis.call("HGETALL", c)
"""

DECLINE = """
local cid, aid = ARGV[4], ARGV[5]
local c = ringing(cid, aid, ARGV[6])
local block = tonumber(hget(k("q", hget(c, "queue")), "block"))
set_block(c, aid, string.format("%.17g", tonumber(NOW) + block))
release(cid)
tell_agent(aid)
return redis.call("HGETALL", c)
"""

TIMEOUT = """
local cid, aid = ARGV[4], ARGV[5]
local c = k("c", cid)
if not rings(c, aid, ARGV[6]) then return false end
tell_agent(aid)
append(c, "missed", aid)
local streak = redis.call("HINCRBY", k("a", aid), "streak", 1)
release(cid)
if streak >= MISSED_MAX then
  set_state(aid, "away")
  return {1, redis.call("HGETALL", c)}
end
return {0, redis.call("HGETALL", c)}
"""

WITHDRAW = """
local cid, aid = ARGV[4], ARGV[5]
local c = k("c", cid)
if not rings(c, aid) then return false end
tell_agent(aid)
release(cid)
return redis.call("HGETALL", c)
"""

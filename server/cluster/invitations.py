"""The Lua scripts of invitations: a specialist joins or leaves a connected call.

The Redis twins of `CallCenter.join` and `CallCenter.leave` (signaling/acd.py);
an invitation is a call hash with `joins` (the connected call), `target` (the
only specialist it may ring) and `xfer` (who leaves once the invitee joins),
routed by `dispatch.py` like any call. Runs after `scripts.PRELUDE`.
"""

from __future__ import annotations

JOIN = """
local iid, aid = ARGV[4], ARGV[5]
local inv = ringing(iid, aid, ARGV[6])
local cid = hget(inv, "joins") or ""
local c = k("c", cid)
if redis.call("EXISTS", c) == 0 or hget(c, "state") ~= "connected" then
  refuse("offer_gone", "the session you were invited to has ended")
end
local a = k("a", aid)
unwait(iid)
redis.call("HSET", inv, "ring", "")
finish(iid)
append(c, "agents", aid)
redis.call("HSET", a, "streak", "0", "call", cid)
redis.call("HINCRBY", a, "answered", 1)
set_state(aid, "in_call")
tell_call(c)
return redis.call("HGETALL", c)
"""

LEAVE = """
local cid, aid = ARGV[4], ARGV[5]
local c = k("c", cid)
if redis.call("EXISTS", c) == 0 or hget(c, "state") ~= "connected" then return false end
local agents = split(hget(c, "agents"))
if not has(agents, aid) or #agents < 2 then return false end
drop_agent(c, cid, agents, aid, "wrap_up")
tell_agent(aid)
tell_call(c)
return redis.call("HGETALL", c)
"""

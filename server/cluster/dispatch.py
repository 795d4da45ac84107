"""The assignment script: ring as many (call, specialist) pairs as the state allows.

The Redis twin of `CallCenter.dispatch` and `_ring_best` (signaling/acd.py): queues
in configuration order; in each, waiting calls merged with calls overflowed to it,
by (priority, enqueue time, sequence); per call, the best available specialist by
(tried this call before: missed it or declined it, skill level, queue strategy key,
id), `declined` and specialists whose decline block has not ended excluded, overflow
specialists at level + `OVERFLOW_LEVEL_PENALTY`; an invitation naming a specialist
(`target`) rings only them. Reading a queue's best specialist is a ZRANGE of
`#declined + #missed + #blocks + 1` members, so one assignment costs O(log n)
whatever the number of waiting calls and specialists. Runs after `scripts.PRELUDE`.

Each offer's ring timer is set here too, in the scheduler's keys (`scheduler.py`), with
`keys.RING_FALLBACK_S` more than the queue's ring time: the step sets it again at once
with the ring time itself (`offers._offer`), and if the step never gets that far (the
dispatch's reply lost beyond its retries, its node dead) the offer, which nobody was
told of, still rings out instead of holding its call and its specialist for ever.
"""

from __future__ import annotations

from signaling import timers

from .keys import RING_FALLBACK_S

# `timers.ring(cid, aid, n, ring)` as the scheduler keeps it, due RING_FALLBACK_S late
RING_TIMER = f"""
local function ring_timer(cid, aid, q, n)
  local ring = tonumber(hget(k("q", q), "ring"))
  if not ring then return end
  local key = "ring:" .. cid .. ":" .. n
  redis.call("ZADD", k("t"), tonumber(NOW) + ring + {RING_FALLBACK_S!r}, key)
  redis.call("HSET", k("tp"), key, cjson.encode({{kind = "{timers.RING}",
    payload = {{call_id = cid, agent_id = aid, offer = n}}}}))
end
"""

DISPATCH = RING_TIMER + """
local function pick(cid)
  local c = k("c", cid)
  local q = hget(c, "queue")
  local declined, missed = split(hget(c, "declined")), split(hget(c, "missed"))
  local blocked, nblocked = blocks(c)
  local now = tonumber(NOW)
  local function out(aid)
    return has(declined, aid) or (blocked[aid] ~= nil and blocked[aid] > now)
  end
  local function tried(aid)
    if blocked[aid] ~= nil or has(missed, aid) then return 1 end
    return 0
  end
  local strategy = hget(k("q", q), "strategy") or "longest-idle"
  local oq = nil
  if hget(c, "ovf") == "1" then oq = hget(k("q", q), "overflow") end
  local best = nil
  local function consider(m, level, skey, aid)
    if best == nil or m < best[1] or (m == best[1] and (level < best[2]
        or (level == best[2] and lt(skey .. "|" .. aid, best[3] .. "|" .. best[4])))) then
      best = {m, level, skey, aid}
    end
  end
  local target = hget(c, "target")
  local function avail(queue, last)
    if not target then return redis.call("ZRANGE", k("av", queue), 0, last) end
    local tm = hget(k("a", target), "m:" .. queue)
    if tm then return {tm} end
    return {}
  end
  for _, mem in ipairs(avail(q, #declined + #missed + nblocked)) do
    local level, skey, aid = string.match(mem, "^(%d+)|(.*)|([^|]*)$")
    if not out(aid) then
      local miss = tried(aid)
      consider(miss, tonumber(level), skey, aid)
      if miss == 0 then break end
    end
  end
  if oq and (best == nil or best[1] == 1 or best[2] > PENALTY) then
    local same = (hget(k("q", oq), "strategy") or "longest-idle") == strategy
    for _, mem in ipairs(avail(oq, -1)) do
      local aid = tail(mem)
      local a = k("a", aid)
      if not out(aid) and not hget(a, "s:" .. q) then
        local miss = tried(aid)
        consider(miss, tonumber(hget(a, "s:" .. oq)) + PENALTY, strat_key(strategy, a), aid)
        if same and miss == 0 then break end
      end
    end
  end
  if best == nil then return nil end
  local aid = best[4]
  redis.call("HSET", c, "state", "ringing", "ring", aid)
  local n = redis.call("HINCRBY", c, "offers", 1)
  ring_timer(cid, aid, q, n)
  redis.call("HSET", k("a", aid), "call", cid, "loff", NOW, "okey", NOWKEY)
  set_state(aid, "ringing")
  tell_agent(aid)
  local via = "1"
  if hget(k("a", aid), "s:" .. q) then via = "0" end
  return {cid, aid, q, via, tostring(n)}
end

local offers = {}
local CHUNK = 64
for _, q in ipairs(redis.call("LRANGE", k("qorder"), 0, -1)) do
  if redis.call("ZCARD", k("av", q)) > 0 then
    local ovf = redis.call("ZRANGE", k("o", q), 0, -1)
    local oi, start, done = 1, 0, false
    while not done do
      local chunk = redis.call("ZRANGE", k("w", q), start, start + CHUNK - 1)
      start = start + CHUNK
      local list = {}
      for _, wm in ipairs(chunk) do
        while oi <= #ovf and lt(ovf[oi], wm) do list[#list + 1] = ovf[oi]; oi = oi + 1 end
        list[#list + 1] = wm
      end
      if #chunk < CHUNK then
        while oi <= #ovf do list[#list + 1] = ovf[oi]; oi = oi + 1 end
        done = true
      end
      for _, mem in ipairs(list) do
        local cid = tail(mem)
        if hget(k("c", cid), "state") == "queued" then
          local o = pick(cid)
          if o then for _, x in ipairs(o) do offers[#offers + 1] = x end end
        end
        if redis.call("ZCARD", k("av", q)) == 0 then done = true; break end
      end
    end
  end
end
return offers
"""

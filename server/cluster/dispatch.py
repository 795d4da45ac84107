"""The assignment script: ring as many (call, specialist) pairs as the state allows.

The Redis twin of `CallCenter.dispatch` and `_ring_best` (signaling/acd.py): the
waiting calls of every queue with a specialist available, and the calls overflowed to
it, merged across queues by (priority, enqueue time, sequence): the longest waiting
first, whichever queue it is in; per call, the best available specialist by
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
-- One source per list to walk: each queue with a specialist available, its waiting calls
-- (read CHUNK at a time) and those overflowed to it; the calls of all of them merged.
local sources = {}
for _, q in ipairs(redis.call("LRANGE", k("qorder"), 0, -1)) do
  if redis.call("ZCARD", k("av", q)) > 0 then
    sources[#sources + 1] = {q = q, z = k("w", q), start = 0, buf = {}, i = 1, live = true}
    sources[#sources + 1] = {q = q, z = k("o", q), start = 0, buf = {}, i = 1, live = true}
  end
end
-- The source's next queued call (ringing ones skipped in the source itself, so the merge
-- below orders candidates only); read once (`found`), checked again when its turn comes.
local function head(src)
  if src.found == src.i then return src.buf[src.i] end
  while true do
    if src.i > #src.buf then
      if src.start < 0 then return nil end
      src.buf = redis.call("ZRANGE", src.z, src.start, src.start + CHUNK - 1)
      src.i = 1
      src.start = src.start + CHUNK
      if #src.buf < CHUNK then src.start = -1 end
      if #src.buf == 0 then return nil end
    end
    local m = src.buf[src.i]
    if hget(k("c", tail(m)), "state") == "queued" then src.found = src.i; return m end
    src.i = src.i + 1
  end
end
while true do
  local best, mem = nil, nil
  for n, src in ipairs(sources) do
    if src.live then
      local m = head(src)
      if m == nil then src.live = false
      elseif mem == nil or lt(m, mem) then best, mem = n, m end
    end
  end
  if best == nil then break end
  local src = sources[best]
  src.i = src.i + 1
  if redis.call("ZCARD", k("av", src.q)) == 0 then
    src.live = false  -- its queue has nobody left: the rest of its list waits
  else
    local cid = tail(mem)
    if hget(k("c", cid), "state") == "queued" then
      local o = pick(cid)
      if o then for _, x in ipairs(o) do offers[#offers + 1] = x end end
    end
  end
end
return offers
"""

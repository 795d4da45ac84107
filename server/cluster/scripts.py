"""The Lua scripts of the Redis router: each `Router` transaction is one script, so it
is atomic across every node (Redis runs one script at a time). Here: the prelude every
script runs after (shared helpers) and the calls' transactions; the answers to an offer
are in `answers.py`, the specialists' in `specialists.py`, the assignment in
`dispatch.py`, invitations in `invitations.py`, the queries in `queries.py`.

Key names match `keys.py`. Hash fields of a call (`c:<id>`): `id`, `blob` (JSON of
the fields that never change), `queue`, `term`, `enq` (enqueue time, Python repr),
`ekey` (enqueue time encoded to sort as bytes), `vis` (the phone that took the call
over, `call.handoff`), `state`, `prio`, `ring` (agent
ringing), `offers` (offers made so far), `declined`, `missed`, `agents` (lists
joined by US, 0x1f), `blk` (decline blocks: specialist, end time, specialist, ...
joined by US), `ovf` ("1" once overflowed), `ans` (answer time), `wkey`
(its member in `w:<queue>`), `acc` and `atold` (the last answer and the numbers it
took, `answers.ACCEPT`); an invitation also has `joins`, `target`, `xfer`
(see `invitations.py`).
Fields of an agent (`a:<id>`): `id`, `blob` (id, name, department), `sq` (skill
queues), `s:<queue>` (level), `state`, `conn`, `idle`, `ikey` (encoded idle
time), `answered`, `streak` (consecutive missed offers), `call`, `loff` (last
offer time, or login), `okey` (its sortable encoding), `m:<queue>` (its member in
`av:<queue>` while available). A queue (`q:<id>`): `strategy`, `overflow`, `block`
(`decline_block_s`), `ring` (`ring_timeout_s`: the ring timer `dispatch.py` sets).

This is a second implementation of `signaling/acd.py`, transaction for
transaction; the strategies' Lua keys come from their records
(`signaling/strategies.py`).

Times arrive from Python as exact repr strings (ARGV[2]) and their sortable
encoding (ARGV[3]); Lua never formats a float except with `%.17g` (exact), so
both backends compute with the same doubles. Lua's `<` on strings follows the
locale, so byte order is compared with `lt`.
"""

from __future__ import annotations

import json

from signaling.acd import MISSED_OFFERS_BEFORE_AWAY, OVERFLOW_LEVEL_PENALTY, REQUEUE_PRIORITY
from signaling.errors import FENCED
from signaling.estimate import EWMA_ALPHA
from signaling.identity import Role
from signaling.strategies import STRATEGIES

# `strat_key(strategy, a)`: the strategy's sort key of specialist hash `a`, from its record
STRATEGY_KEYS = "local STRATEGY_KEYS = {\n" + "".join(
    f"  [{json.dumps(s.name)}] = function(a) return {s.lua} end,\n"
    for s in STRATEGIES.values()) + """}
local function strat_key(strategy, a)
  return (STRATEGY_KEYS[strategy] or STRATEGY_KEYS["longest-idle"])(a)
end
"""

PRELUDE = f"""
local P, NOW, NOWKEY = ARGV[1], ARGV[2], ARGV[3]
local SEP = "\\31"
local MISSED_MAX, PENALTY = {MISSED_OFFERS_BEFORE_AWAY}, {OVERFLOW_LEVEL_PENALTY}
local REQUEUE_PRIO = {REQUEUE_PRIORITY}
local ALPHA = {EWMA_ALPHA!r}
local function k(...) return P .. ":" .. table.concat({{...}}, ":") end
local function hget(key, f)
  local v = redis.call("HGET", key, f)
  if v == false or v == "" then return nil end
  return v
end
local function split(s)
  local t = {{}}
  if s == nil then return t end
  for x in string.gmatch(s, "[^\\31]+") do t[#t + 1] = x end
  return t
end
local function has(t, x)
  for _, v in ipairs(t) do if v == x then return true end end
  return false
end
local function lt(a, b)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function refuse(code, msg) error({{err = "REFUSED " .. code .. " " .. msg}}) end
-- The principals this transaction tells, each with its next number (`signaling/order.py`):
-- Redis runs one script at a time, so one principal's numbers follow the decisions' order.
local TOLD = {{}}
local function tell(principal)
  TOLD[#TOLD + 1] = principal
  TOLD[#TOLD + 1] = redis.call("HINCRBY", k("sq"), principal, 1)
end
local function tell_agent(aid) tell("{Role.SPECIALIST.value}:" .. aid) end
local function terminal(tid) return "{Role.TERMINAL.value}:" .. tid end
local function tell_terminal(tid) tell(terminal(tid)) end
-- `identity.caller_principal`: the phone that took the call over, else its terminal
local function caller(c)
  local vis = hget(c, "vis")
  if vis then return "{Role.VISITOR.value}:" .. vis end
  return terminal(hget(c, "term") or "")
end
local function tell_call(c)
  tell(caller(c))
  for _, aid in ipairs(split(hget(c, "agents"))) do tell_agent(aid) end
end
local function tail(member) return string.match(member, "([^|]*)$") end
local function append(key, field, value)
  local t = split(hget(key, field))
  t[#t + 1] = value
  redis.call("HSET", key, field, table.concat(t, SEP))
end
-- A call's decline blocks: specialist -> the time their block ends (a number), and how many.
local function blocks(c)
  local t, n = {{}}, 0
  local flat = split(hget(c, "blk"))
  for i = 1, #flat, 2 do
    t[flat[i]] = tonumber(flat[i + 1])
    n = n + 1
  end
  return t, n
end
local function set_block(c, aid, ends)
  local flat = split(hget(c, "blk"))
  local found = false
  for i = 1, #flat, 2 do
    if flat[i] == aid then flat[i + 1] = ends; found = true end
  end
  if not found then flat[#flat + 1] = aid; flat[#flat + 1] = ends end
  redis.call("HSET", c, "blk", table.concat(flat, SEP))
end
{STRATEGY_KEYS}
local function index(aid)
  local a = k("a", aid)
  local ready = hget(a, "conn") == "1" and hget(a, "state") == "available"
  for _, q in ipairs(split(hget(a, "sq"))) do
    local old = hget(a, "m:" .. q)
    if old then
      redis.call("ZREM", k("av", q), old)
      redis.call("HDEL", a, "m:" .. q)
    end
    if ready then
      local strategy = hget(k("q", q), "strategy") or "longest-idle"
      local m = string.format("%06d", tonumber(hget(a, "s:" .. q))) .. "|"
        .. strat_key(strategy, a) .. "|" .. aid
      redis.call("ZADD", k("av", q), 0, m)
      redis.call("HSET", a, "m:" .. q, m)
    end
  end
end
local function count(a, state, delta)
  for _, q in ipairs(split(hget(a, "sq"))) do redis.call("HINCRBY", k("n", q), state, delta) end
end
local function set_state(aid, state)
  local a = k("a", aid)
  local old = hget(a, "state")
  if state == "available" and old ~= "available" then
    redis.call("HSET", a, "idle", NOW, "ikey", NOWKEY)
  end
  if old ~= state then
    count(a, old, -1)
    count(a, state, 1)
    redis.call("HSET", a, "state", state)
  end
  index(aid)
end

local function add_waiting(cid)
  local c = k("c", cid)
  local q = hget(c, "queue")
  local seq = redis.call("INCR", k("seq"))
  local m = string.format("%011d", tonumber(hget(c, "prio")) + 2147483648) .. "|"
    .. hget(c, "ekey") .. "|" .. string.format("%016d", seq) .. "|" .. cid
  redis.call("ZADD", k("w", q), 0, m)
  redis.call("ZADD", k("ws", q), tonumber(hget(c, "enq")), cid)
  redis.call("HSET", c, "wkey", m)
end
local function unwait(cid)
  local c = k("c", cid)
  local q = hget(c, "queue")
  local m = hget(c, "wkey")
  if m then
    redis.call("ZREM", k("w", q), m)
    local target = hget(k("q", q), "overflow")
    if hget(c, "ovf") == "1" and target then redis.call("ZREM", k("o", target), m) end
  end
  redis.call("ZREM", k("ws", q), cid)
  redis.call("HSET", c, "wkey", "")
end
local function release(cid)
  local c = k("c", cid)
  local aid = hget(c, "ring")
  redis.call("HSET", c, "ring", "", "state", "queued")
  if aid then
    local a = k("a", aid)
    if redis.call("EXISTS", a) == 1 and hget(a, "call") == cid then
      redis.call("HSET", a, "call", "")
      set_state(aid, "available")
    end
  end
end
-- Call `c` rings `aid`, with offer number `offer` unless that is "" (see `Call.rings`).
local function rings(c, aid, offer)
  return redis.call("EXISTS", c) == 1 and hget(c, "ring") == aid
    and (offer == nil or offer == "" or (hget(c, "offers") or "0") == offer)
end
local function ringing(cid, aid, offer)
  local c = k("c", cid)
  if not rings(c, aid, offer) then
    refuse("offer_gone", "call " .. cid .. " is not ringing you")
  end
  return c
end
local function waiting_state(c)
  local s = hget(c, "state")
  return s == "queued" or s == "ringing"
end
-- A node's recent steps of one kind (`set`, scored by time): the last `watched_s` only
local function watch(set, cid, watched_s)
  redis.call("ZADD", set, NOW, cid)
  redis.call("ZREMRANGEBYSCORE", set, "-inf", "(" .. (tonumber(NOW) - tonumber(watched_s)))
  redis.call("EXPIRE", set, 2 * tonumber(watched_s))
end
-- `ending`, `kept_s`: the caller's `backend.Ending` (JSON, "" = none) and its TTL; the
-- node `instance` ending it keeps the call among its recent ends (`en:<instance>`, the
-- last `watched_s`): taken over dead, its survivor logs those it may not have
local function finish(cid, ending, kept_s, instance, watched_s)
  local c = k("c", cid)
  if ending and ending ~= "" then
    redis.call("SET", k("end", cid), ending, "EX", kept_s)
    if instance ~= "" then watch(k("en", instance), cid, watched_s) end
  end
  local term = hget(c, "term") or ""
  local accn = hget(c, "accn")
  if accn then redis.call("SREM", k("an", accn), cid) end
  redis.call("HSET", c, "state", "ended")
  local out = redis.call("HGETALL", c)
  redis.call("DEL", c)
  redis.call("SREM", k("tc", term), cid)
  return out
end
-- One specialist leaves call `cid` (going to `state`); returns the specialists who remain.
local function drop_agent(c, cid, agents, aid, state)
  local rest = {{}}
  local dropped = false
  for _, x in ipairs(agents) do
    if x == aid and not dropped then dropped = true else rest[#rest + 1] = x end
  end
  redis.call("HSET", c, "agents", table.concat(rest, SEP))
  local a = k("a", aid)
  if redis.call("EXISTS", a) == 1 and hget(a, "call") == cid then
    redis.call("HSET", a, "call", "")
    set_state(aid, state)
  end
  return rest
end
-- KEYS[1]: the node instance running the transaction (`keys.fence`): refused once the others
-- have taken it for dead, before it changes or reads anything.
if KEYS[1] and redis.call("EXISTS", k("fence", KEYS[1])) == 1 then
  refuse("{FENCED}", "this node was taken for dead by the others")
end
"""

SETUP = """
redis.call("DEL", k("qorder"))
for i = 4, #ARGV, 5 do
  redis.call("RPUSH", k("qorder"), ARGV[i])
  redis.call("HSET", k("q", ARGV[i]), "strategy", ARGV[i + 1], "overflow", ARGV[i + 2],
    "block", ARGV[i + 3], "ring", ARGV[i + 4])
end
redis.call("SET", k("state"), NOW)
return 1
"""

ENQUEUE = """
local cid = ARGV[4]
local c = k("c", cid)
if redis.call("EXISTS", c) == 1 then refuse("duplicate_call", "call " .. cid .. " exists") end
-- `routing.in_progress_refusal`: one live call per terminal (not invitations, not handed off)
if ARGV[16] == "" then
  for _, other in ipairs(redis.call("SMEMBERS", k("tc", ARGV[6]))) do
    local o = k("c", other)
    if redis.call("EXISTS", o) == 1 and not hget(o, "joins") and not hget(o, "vis") then
      refuse("call_in_progress", "call " .. other .. " is still " .. hget(o, "state"))
    end
  end
end
-- `routing.RequestKeys`: a kiosk's request key makes one call, also once that call ended
if ARGV[20] ~= "" then
  local rk = k("rq", ARGV[6], ARGV[20])
  local made = redis.call("GET", rk)
  if made and made ~= cid then
    refuse("request_done", "request " .. ARGV[20] .. " made call " .. made .. " already")
  end
  redis.call("SET", rk, cid, "EX", ARGV[21])
end
redis.call("HSET", c, "id", cid, "queue", ARGV[5], "term", ARGV[6], "blob", ARGV[7],
  "enq", ARGV[8], "ekey", ARGV[9], "prio", ARGV[10], "declined", ARGV[11], "missed", ARGV[12],
  "agents", ARGV[13], "ovf", ARGV[14], "ans", ARGV[15], "joins", ARGV[16], "target", ARGV[17],
  "xfer", ARGV[18], "blk", ARGV[19], "state", "queued", "ring", "")
add_waiting(cid)
redis.call("SADD", k("tc", ARGV[6]), cid)
tell_terminal(ARGV[6])
return redis.call("ZRANK", k("w", ARGV[5]), hget(c, "wkey")) + 1
"""

REMOVE = """
local cid = ARGV[4]
local c = k("c", cid)
if redis.call("EXISTS", c) == 0 or not waiting_state(c) then return false end
local ring = hget(c, "ring")
if ring then
  release(cid)
  redis.call("HSET", c, "ring", ring)
end
unwait(cid)
if ring then tell_agent(ring) end
tell(caller(c))
return finish(cid, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"""

OVERFLOW = """
local cid = ARGV[4]
local c = k("c", cid)
if redis.call("EXISTS", c) == 0 or hget(c, "ovf") == "1" or not waiting_state(c) then return 0 end
local target = hget(k("q", hget(c, "queue")), "overflow")
if not target or redis.call("EXISTS", k("q", target)) == 0 then return 0 end
redis.call("HSET", c, "ovf", "1")
redis.call("ZADD", k("o", target), 0, hget(c, "wkey"))
return 1
"""

HANGUP = """
local cid = ARGV[4]
local c = k("c", cid)
if redis.call("EXISTS", c) == 0 or hget(c, "state") ~= "connected" then return false end
for _, aid in ipairs(split(hget(c, "agents"))) do
  local a = k("a", aid)
  if redis.call("EXISTS", a) == 1 and hget(a, "call") == cid then
    redis.call("HSET", a, "call", "")
    set_state(aid, "wrap_up")
  end
end
local ans = hget(c, "ans")
if ans then
  local q = hget(c, "queue")
  local s = tonumber(NOW) - tonumber(ans)
  local old = redis.call("HGET", k("ht"), q)
  local mean = s
  if old then mean = tonumber(old) + ALPHA * (s - tonumber(old)) end
  redis.call("HSET", k("ht"), q, string.format("%.17g", mean))
end
tell_call(c)
return finish(cid, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
"""

REQUEUE = """
local cid, aid = ARGV[4], ARGV[5]
local c = k("c", cid)
if redis.call("EXISTS", c) == 0 or hget(c, "state") ~= "connected" then return false end
local agents = split(hget(c, "agents"))
if not has(agents, aid) then return false end
local rest = drop_agent(c, cid, agents, aid, "away")
tell_call(c)
if #rest > 0 then return redis.call("HGETALL", c) end
redis.call("HSET", c, "state", "queued", "prio", tostring(REQUEUE_PRIO))
append(c, "declined", aid)
add_waiting(cid)
return redis.call("HGETALL", c)
"""

# `routing.handoff_refusal`, the same refusals in the same order
HAND_OFF = """
local cid, term, vis = ARGV[4], ARGV[5], ARGV[6]
local c = k("c", cid)
if redis.call("EXISTS", c) == 0 or hget(c, "term") ~= term or hget(c, "joins") then
  refuse("not_in_call", "call " .. cid .. " is not yours")
end
if hget(c, "vis") then refuse("handed_off", "call " .. cid .. " was handed off already") end
if not waiting_state(c) then refuse("not_waiting", "call " .. cid .. " is not waiting") end
redis.call("HSET", c, "vis", vis)
if ARGV[7] ~= "" then watch(k("ho", ARGV[7]), cid, ARGV[8]) end  -- `keys.recent_handoffs`
tell_terminal(term)
tell(caller(c))
return redis.call("HGETALL", c)
"""

def transaction(body: str) -> str:
    """A transaction's script: `{result, TOLD}`, the numbers it took beside its answer
    (`RedisRouter` hands them to `signaling.order`)."""
    return ("local function body()\n" + body
            + "\nend\nlocal result = body()\nreturn {result, TOLD}\n")

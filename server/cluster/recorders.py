"""`RedisRecorderPool`: the recorder pool shared by every node of a cluster.

The `signaling.recorders.RecorderPool` whose state lives in Redis, so a `vwin recorder`
connected to any node can record a session handled on any other, each new session goes to
the least loaded recorder cluster-wide, and a recorder that is lost (its socket closed, or
its node died: `backends.py` takes dead nodes' recorders over) gives its sessions back to
whichever node notices. Every method is one Lua script, atomic across nodes, with the same
results as `MemoryRecorderPool` (the pool tests run against both); `assign`'s reads the
router's call too (one not connected in that session gets no recorder). Key names: `keys.py`.
"""

from __future__ import annotations

from redis.asyncio import Redis

from signaling.recorders import Assignment, RecorderLoad, Released, Unassigned

from . import keys

_PRELUDE = """
local P = ARGV[1]
local function k(...) return P .. ":" .. table.concat({...}, ":") end
local LIVE, CAP, OF, SEG, WAIT = k("rc", "live"), k("rc", "cap"), k("rc", "of"),
  k("rc", "seg"), k("rc", "wait")
local function held(name) return k("rc", "held", name) end
local function leave(name)
  local calls, out = redis.call("SMEMBERS", held(name)), {}
  for _, cid in ipairs(calls) do
    if redis.call("HGET", OF, cid) == name then redis.call("HDEL", OF, cid) end
    out[#out + 1] = {cid, tonumber(redis.call("HGET", SEG, cid)) or 0}
  end
  redis.call("DEL", held(name))
  redis.call("ZREM", LIVE, name)
  redis.call("HDEL", CAP, name)
  return out
end
"""

JOIN = _PRELUDE + """
local calls = leave(ARGV[2])
redis.call("ZADD", LIVE, 0, ARGV[2])
redis.call("HSET", CAP, ARGV[2], math.max(tonumber(ARGV[3]), 0))
return calls
"""

LEAVE = _PRELUDE + "return leave(ARGV[2])"

# Only a call connected in the session named (the router's call hash, `keys.call`: its
# state, and the session in its blob), read in the same script: "gone" otherwise.
# Least loaded first: load = calls / capacity (compared as n1 * c2 < n2 * c1, exact), then
# fewer calls, then the name (LIVE is in byte order and only a strictly better one wins).
ASSIGN = _PRELUDE + """
local cid = ARGV[2]
local call = redis.call("HMGET", k("c", cid), "state", "blob")
if call[1] ~= "connected" or cjson.decode(call[2]).session_id ~= ARGV[3] then
  return "gone"
end
local current = redis.call("HGET", OF, cid)
if current then return {current, tonumber(redis.call("HGET", SEG, cid)), 0} end
local best, best_n, best_c = nil, 0, 1
for _, name in ipairs(redis.call("ZRANGE", LIVE, 0, -1)) do
  local c = tonumber(redis.call("HGET", CAP, name))
  local n = redis.call("SCARD", held(name))
  if n < c and (best == nil or n * best_c < best_n * c
                or (n * best_c == best_n * c and n < best_n)) then
    best, best_n, best_c = name, n, c
  end
end
if best == nil then return false end
redis.call("SADD", held(best), cid)
redis.call("HSET", OF, cid, best)
redis.call("ZREM", WAIT, cid)
return {best, redis.call("HINCRBY", SEG, cid, 1), 1}
"""

RELEASE = _PRELUDE + """
local cid = ARGV[2]
local waited = redis.call("ZSCORE", WAIT, cid)
redis.call("ZREM", WAIT, cid)
redis.call("HDEL", SEG, cid)
local name = redis.call("HGET", OF, cid)
if not name then return {"", (waited and tonumber(waited) > 0) and 1 or 0} end
redis.call("HDEL", OF, cid)
redis.call("SREM", held(name), cid)
return {name, 0}
"""

AVAILABLE = _PRELUDE + """
for _, name in ipairs(redis.call("ZRANGE", LIVE, 0, -1)) do
  if redis.call("SCARD", held(name)) < tonumber(redis.call("HGET", CAP, name)) then return 1 end
end
return 0
"""

# A waiting call's score is its place (> 0), negated once its log names the gap (ARGV[3]).
WAIT_FOR = _PRELUDE + """
local score = redis.call("ZSCORE", WAIT, ARGV[2])
if not score then score = redis.call("INCR", k("rc", "seq")) end
if ARGV[3] == "1" or tonumber(score) < 0 then score = -math.abs(tonumber(score)) end
redis.call("ZADD", WAIT, score, ARGV[2])
return 1
"""

TAKE_WAITING = _PRELUDE + """
local calls = redis.call("ZRANGE", WAIT, 0, -1)
redis.call("DEL", WAIT)
return calls
"""

RECORDERS = _PRELUDE + """
local out = {}
for _, name in ipairs(redis.call("ZRANGE", LIVE, 0, -1)) do
  out[#out + 1] = {name, tonumber(redis.call("HGET", CAP, name)),
                   redis.call("SMEMBERS", held(name))}
end
return out
"""


class RedisRecorderPool:
    """`RecorderPool` over one Redis, shared by the nodes using the same key prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._join = redis.register_script(JOIN)
        self._leave = redis.register_script(LEAVE)
        self._assign = redis.register_script(ASSIGN)
        self._release = redis.register_script(RELEASE)
        self._available = redis.register_script(AVAILABLE)
        self._wait = redis.register_script(WAIT_FOR)
        self._take_waiting = redis.register_script(TAKE_WAITING)
        self._recorders = redis.register_script(RECORDERS)

    async def join(self, name: str, capacity: int) -> dict[str, int]:
        return _held(await self._join(keys=[], args=[self._prefix, name, capacity]))

    async def leave(self, name: str) -> dict[str, int]:
        return _held(await self._leave(keys=[], args=[self._prefix, name]))

    async def assign(self, call_id: str, session_id: str) -> Assignment | Unassigned:
        found = await self._assign(keys=[], args=[self._prefix, call_id, session_id])
        if found == "gone":
            return Unassigned.GONE
        if not found:
            return Unassigned.NO_ROOM
        name, segment, new = found
        return Assignment(recorder=str(name), segment=int(segment), new=bool(int(new)))

    async def release(self, call_id: str) -> Released:
        name, unnamed = await self._release(keys=[], args=[self._prefix, call_id])
        return Released(recorder=str(name) or None, unnamed=bool(int(unnamed)))

    async def recorder_of(self, call_id: str) -> str | None:
        name = await self._redis.hget(keys.recorder_of(self._prefix), call_id)
        return str(name) if name else None

    async def assignment_of(self, call_id: str) -> Assignment | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(keys.recorder_of(self._prefix), call_id)
            pipe.hget(keys.recorder_segments(self._prefix), call_id)
            name, segment = await pipe.execute()
        return Assignment(recorder=_name(name), segment=int(segment or 0)) if name else None

    async def available(self) -> bool:
        return bool(await self._available(keys=[], args=[self._prefix]))

    async def wait(self, call_id: str, named: bool = False) -> None:
        await self._wait(keys=[], args=[self._prefix, call_id, "1" if named else "0"])

    async def take_waiting(self) -> list[str]:
        return _names(await self._take_waiting(keys=[], args=[self._prefix]))

    async def recorders(self) -> list[RecorderLoad]:
        rows = await self._recorders(keys=[], args=[self._prefix])
        return [RecorderLoad(name=str(name), capacity=int(capacity),
                             calls=tuple(sorted(_names(calls))))
                for name, capacity, calls in rows]


def _held(pairs: list[tuple[str | bytes, int]]) -> dict[str, int]:
    """A script's `{call, segment}` pairs."""
    return {_name(call_id): int(segment) for call_id, segment in pairs}


def _name(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _names(values: list[str | bytes]) -> list[str]:
    return [_name(v) for v in values]

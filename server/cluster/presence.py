"""`RedisPresences`: resume tokens and who is connected where, shared by every node.

A presence also names the node instance holding the principal's socket (the
bus delivers there) and sits in that instance's set, so the survivors can take
a dead node's principals over (`node.py`).

Epochs come from one counter (`keys.epochs`), not from the presence: a disconnect or a
grace timer names the epoch of the connection it is about, and may come late (a node
stalled, its disconnects retried while its Redis pool was drained). Counted per presence,
a presence dropped and made anew started again at 1, and such a late disconnect of the
old connection disconnected the new one; its grace then dropped the presence of a kiosk
still connected, whose messages from other nodes then went nowhere (the bench day's lost
calls after a node's stalls).
"""

from __future__ import annotations

import secrets

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from signaling.backend import Presence
from signaling.errors import FENCED, Refused

_PRELUDE = """
local P = ARGV[1]
local function k(...) return P .. ":" .. table.concat({...}, ":") end
"""

CONNECT = _PRELUDE + """
local principal, resume, fresh, node = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call("EXISTS", k("fence", node)) == 1 then
  return redis.error_reply("REFUSED fenced this node was taken for dead by the others")
end
local p = k("p", principal)
local current = redis.call("HGET", p, "resume")
local epoch = redis.call("INCR", k("ep"))  -- never an earlier presence's (module doc)
local old_node = redis.call("HGET", p, "node")
local resumed, replaced = 0, 0
if current and resume ~= "" and current == resume then
  resumed = 1
else
  if current then replaced = 1 end
  current = fresh
end
redis.call("HSET", p, "resume", current, "epoch", epoch, "connected", "1", "node", node)
if old_node and old_node ~= node then redis.call("SREM", k("pn", old_node), principal) end
redis.call("SADD", k("pn", node), principal)
return {current, epoch, resumed, replaced}
"""

DISCONNECT = _PRELUDE + """
local p = k("p", ARGV[2])
if tonumber(redis.call("HGET", p, "epoch") or "-1") ~= tonumber(ARGV[3]) then return 0 end
redis.call("HSET", p, "connected", "0")
local node = redis.call("HGET", p, "node")
if node then redis.call("SREM", k("pn", node), ARGV[2]) end
return 1
"""

DROP = _PRELUDE + """
local p = k("p", ARGV[2])
if tonumber(redis.call("HGET", p, "epoch") or "-1") ~= tonumber(ARGV[3])
    or redis.call("HGET", p, "connected") ~= "0" then
  return 0
end
redis.call("DEL", p)
return 1
"""


class NodePresence(Presence, kw_only=True):
    """A presence and the node instance that holds (or last held) its socket."""

    node: str = ""


class RedisPresences:
    def __init__(self, redis: Redis, prefix: str, instance: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self.instance = instance
        self._connect = redis.register_script(CONNECT)
        self._disconnect = redis.register_script(DISCONNECT)
        self._drop = redis.register_script(DROP)

    async def connect(self, principal: str, resume: str | None) -> tuple[Presence, bool]:
        try:
            token, epoch, resumed, replaced = await self._connect(keys=[], args=[
                self._prefix, principal, resume or "", secrets.token_urlsafe(24), self.instance])
        except ResponseError as exc:
            if str(exc).startswith(f"REFUSED {FENCED} "):
                raise Refused(FENCED, "this node was taken for dead by the others") from None
            raise
        presence = NodePresence(principal=principal, resume=str(token), epoch=int(epoch),
                                node=self.instance, replaced=bool(replaced))
        return presence, bool(resumed)

    async def disconnect(self, principal: str, epoch: int) -> bool:
        return bool(await self._disconnect(keys=[], args=[self._prefix, principal, epoch]))

    async def get(self, principal: str) -> NodePresence | None:
        h = await self._redis.hgetall(f"{self._prefix}:p:{principal}")
        if not h:
            return None
        return msgspec.convert({"principal": principal, "resume": h["resume"],
                                "epoch": int(h["epoch"]), "connected": h["connected"] == "1",
                                "node": h.get("node", "")}, NodePresence)

    async def drop(self, principal: str, epoch: int) -> bool:
        return bool(await self._drop(keys=[], args=[self._prefix, principal, epoch]))

"""Answering the same attempt again: a routing transaction whose reply was lost with the
connection (Redis restarted, a connection cut just after the script ran) is run again by
its step (`signaling.retry.again`) with the same attempt token, and answers what it
answered the first time, numbers included, changing nothing (docs/cluster.md, "A reply
lost with the connection").

The token is the script's last argument ("" outside an attempt: nothing is kept, as
before). What the first run answered (`{result, TOLD}`, MessagePack) is kept under
`<prefix>:rp:<transaction>:<subject>:<token>` (`keys.replay`) for `keys.REPLAY_TTL_S`,
longer than any step tries again; the subject is the transaction's first argument (the
call or specialist), "" for `dispatch`. A run that was refused, or told nobody, keeps
nothing: each of these transactions tells someone of every change it makes, so such a
run changed nothing, and the same attempt run again may as well run afresh (the usual
dispatch that finds nothing to offer writes nothing). The memory router loses no reply
and has nothing to keep.
"""

from __future__ import annotations

from . import keys

# The transactions kept for their attempt (`accept` keeps its answer on the call itself:
# `answers.ACCEPT`; `enqueue` and `hand_off` are refused when run again, and their steps
# take the refusal as their own earlier attempt).
REPLAYED = frozenset({
    "hangup", "requeue", "leave", "dispatch", "timeout", "withdraw", "remove", "set_status",
    "wrapup_done", "decline", "join"})


def replayed(name: str, body: str) -> str:
    """A numbering transaction's script (`scripts.transaction`) that keeps its reply for
    its attempt and gives it again to the same attempt."""
    return f"""
local function body()
{body}
end
local ATTEMPT = ARGV[#ARGV]
local KEPT = nil
if ATTEMPT ~= "" then
  local subject = ""
  if #ARGV > 4 then subject = ARGV[4] end
  KEPT = k("rp", "{name}", subject, ATTEMPT)
  local kept = redis.call("GET", KEPT)
  if kept then return cmsgpack.unpack(kept) end
end
local reply = {{body(), TOLD}}
if KEPT and #TOLD > 0 then
  redis.call("SET", KEPT, cmsgpack.pack(reply), "EX", {keys.REPLAY_TTL_S})
end
return reply
"""

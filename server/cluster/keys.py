"""Every Redis key name, TTL and timing constant of the cluster backend, in one place.

All keys start with `[routing] key_prefix` (default `vwin`), so several services
(or test runs) share one Redis without seeing each other. Builders take the
prefix first; the Lua scripts (`scripts.py`) build the same names from the
prefix they are given, with the same spellings as below.
"""

from __future__ import annotations

# ---- timing ---------------------------------------------------------------------

HEARTBEAT_INTERVAL_S = 1.0  # a node refreshes its heartbeat key this often
HEARTBEAT_TTL_S = 3  # missing for 3 s (3 missed beats) = dead: survivors notice within ~4 s
HEARTBEAT_DEADLINE_S = HEARTBEAT_TTL_S - HEARTBEAT_INTERVAL_S  # a slower beat = degraded
SWEEP_INTERVAL_S = 1.0  # how often every node looks for dead nodes
# After an outage (Redis restarted, this node stalled) every heartbeat has lapsed and each
# node's client reconnects in its own time: a loaded node took 8 s longer than the other on
# a goal-size day, and was taken for dead (1,723 principals moved). Judge others only after:
OUTAGE_GRACE_S = 12.0
# A node back from an outage of its own (Redis lost, or its loop stalled past a beat) has its
# clients' resumes and the relays it missed ahead of it, and may stall again: for
# `RECOVERY_S` it beats with `RECOVERY_TTL_S`, so that a stall then is not taken for death
# (goal-size day B: node 2, holding 1,711 sockets, missed its beats 13 s after Redis came back,
# past the others' grace; every socket and both recorders were moved). A node that dies in
# that minute is taken over 10 s after its last beat instead of 3.
RECOVERY_S = 60.0
RECOVERY_TTL_S = 10
REAP_LOCK_TTL_S = 30  # one survivor takes a dead node over; if it dies too, another retries
FENCE_TTL_S = 86_400  # a fence outlives any stall; a dead instance's is dropped a day later
TIMER_POLL_S = 0.05  # timers are claimed this often: 50 ms is below what a person notices
TIMER_CLAIM_BATCH = 200  # due timers claimed per poll; the rest next poll (bounded script time)
TIMER_LEASE_S = 5.0  # a claimed timer whose handler has not finished (acknowledged) by then
# is claimed again by any node's poll: its node died or hung. A crash mid-handler delays the
# timer by at most this (like a dead node's heartbeat, a few seconds)
TIMER_RENEWALS_PER_LEASE = 5  # a live node extends its running handlers' leases every
# fifth of the lease (1 s), so a slow handler (a busy database) is not run twice
OWNER_CACHE_S = 5.0  # how long a node trusts its cached "principal -> node" lookup
CALL_CACHE_S = 5.0  # how long a node trusts its copy of a connected call for relaying
# (callcache.py); change notices drop it sooner: this only bounds a lost notice's effect
CALL_CACHE_MAX = 10_000  # connected calls kept per node (expired ones are purged when full)
RECONNECT_MIN_S = 0.05  # first retry after Redis is lost: a blip heals at once
RECONNECT_MAX_S = 2.0  # backoff cap: a restarted Redis is found again within 2 s
CONNECTION_CHECK_S = 1  # a pooled connection idle this long is PINGed before use: a
# connection Redis dropped meanwhile is replaced instead of failing the next command
SOCKET_TIMEOUT_S = 5.0  # a Redis command that hangs longer is a lost connection
POOL_MAX_CONNECTIONS = 64  # per client and node: scripts take well under 1 ms, so 64 in
# flight keep Redis busy; more would only add connections (Redis serves one at a time)
POOL_WAIT_S = 3 * SOCKET_TIMEOUT_S  # a command waits this long for a free pooled connection:
# a dead node's clients resuming here all at once, on a busy machine, wait rather than fail
RING_FALLBACK_S = 15.0  # the ring timer the dispatch script sets is due this much after the
# ring time: the step replaces it at once; it fires only for an offer whose step never got
# that far (longer than a dispatch tries again, about 7 s: dispatch.py)
REPLAY_TTL_S = 120  # a transaction's reply is kept this long for its attempt (replay.py):
# longer than any step tries again (`retry.REPORT_RETRY_S`, about 7 s)
PUBLISH_KEEP_S = 12.0  # a message whose publish fails (Redis away) is published again, in
# order, for this long after it was sent, then dropped (logged): longer than a routing step
# tries again (`retry.REPORT_RETRY_S`, about 7 s) plus the reconnect backoff's cap
PUBLISH_QUEUE_MAX = 20_000  # messages waiting to be published: beyond this, relayed frames
# are dropped (counted, logged once per outage); beyond twice this, everything is
FILL_MAX = 32  # numbered messages kept per principal for a node that lost its subscription
FILL_TTL_S = 30  # ... for this long after the last one (bus.py, publisher.py)
REORDER_MAX_HELD = 256  # numbered messages held per connection; more = give up the gap
DRAIN_CLOSE_CODE = 1012  # "service restart": clients reconnect (to another node) at once
REPLACED_CLOSE_CODE = 4409  # another connection of the same principal took over
REBALANCE_MARGIN = 10  # a node sheds connections only when over its fair share by this many
# sockets as well as by `[routing] rebalance_tolerance`: a small cluster does not churn
REBALANCE_STEP = 0.05  # at most this share of a node's sockets is moved per interval, spread
# over it: the nodes they go to take their hellos (database and Redis round trips) a few at
# a time, not as a storm (at 2,000 sockets and 5 s: 20 a second)
REBALANCE_COOLDOWN_S = 600.0  # a principal this node moved is not moved by it again for this
# long: a load balancer may send it straight back

# ---- encodings shared with Lua ----------------------------------------------------

SEP = "\x1f"  # list separator inside hash fields (ASCII unit separator: never in an id)
NONE = ""  # a missing optional value inside a hash field


def k(prefix: str, *parts: str) -> str:
    """`prefix:part:part`: the one way every key name is spelled (Lua: `k(...)`)."""
    return ":".join((prefix, *parts))


# ---- routing state (router.py, scripts.py) -------------------------------------------

def fill(prefix: str, principal: str) -> str:
    """List: the latest numbered messages published for a principal connected on another
    node (`[seq, [payload, ...]]`, msgpack; at most `FILL_MAX`, gone `FILL_TTL_S` after the
    last): its node reads them when it subscribes again after losing Redis."""
    return k(prefix, "gf", principal)


def queue_config(prefix: str, queue: str) -> str:
    """Hash: a queue's `strategy` and `overflow` target, written by every node at start."""
    return k(prefix, "q", queue)


def queue_order(prefix: str) -> str:
    """List: queue ids in configuration order (dispatch merges their waiting calls; ties
    between two lists of one call go to the earlier queue)."""
    return k(prefix, "qorder")


def call(prefix: str, call_id: str) -> str:
    """Hash: one live call (fields in `scripts.py`); deleted when the call ends."""
    return k(prefix, "c", call_id)


def ending(prefix: str, call_id: str) -> str:
    """String with TTL `backend.ENDINGS_KEPT_S`: JSON of the `backend.Ending` the
    transaction that ended the call kept (`finish` in scripts.py)."""
    return k(prefix, "end", call_id)


def recent_ends(prefix: str, instance: str) -> str:
    """Sorted set, scored by end time: the calls a node instance ended with an `Ending`
    over the last `ENDS_WATCHED_S` (`finish` in scripts.py): taken over dead, its survivor
    logs those whose end it may not have (`ClusterBackends.dead`)."""
    return k(prefix, "en", instance)


ENDS_WATCHED_S = 60  # far beyond a step's tries between its routing end and its log append


def recent_handoffs(prefix: str, instance: str) -> str:
    """Sorted set, scored by time: the calls a node instance handed over to a phone over
    the last `ENDS_WATCHED_S` (`HAND_OFF` in scripts.py): taken over dead, its survivor
    logs the `handed_off` it may not have (`ClusterBackends.dead`)."""
    return k(prefix, "ho", instance)


def agent(prefix: str, agent_id: str) -> str:
    """Hash: one logged-in specialist; deleted when they log out or are lost."""
    return k(prefix, "a", agent_id)


def waiting(prefix: str, queue: str) -> str:
    """Sorted set, all scores 0, ordered by member bytes:
    `priority|enqueued_at|sequence|call_id`, each part encoded to sort like the number."""
    return k(prefix, "w", queue)


def waiting_since(prefix: str, queue: str) -> str:
    """Sorted set: waiting call ids scored by enqueue time (longest wait in O(log n))."""
    return k(prefix, "ws", queue)


def overflowed(prefix: str, queue: str) -> str:
    """Sorted set like `waiting`: other queues' calls now also offered to this queue."""
    return k(prefix, "o", queue)


def available(prefix: str, queue: str) -> str:
    """Sorted set, scores 0: available specialists of the queue, best first
    (`level|strategy key|agent_id`), so picking one is a ZRANGE of a few members."""
    return k(prefix, "av", queue)


def counts(prefix: str, queue: str) -> str:
    """Hash: how many specialists of the queue are in each state, plus `logged_in`."""
    return k(prefix, "n", queue)


def handle_times(prefix: str) -> str:
    """Hash: queue -> mean handle time (EWMA, exact double as `%.17g`)."""
    return k(prefix, "ht")


def sequence(prefix: str) -> str:
    """Counter: tie-breaker between calls queued at the same instant (FIFO)."""
    return k(prefix, "seq")


def sequences(prefix: str) -> str:
    """Hash: principal -> the last number a routing transaction took for it (`tell` in
    scripts.py; docs/cluster.md "Order across nodes"). One field per principal ever told."""
    return k(prefix, "sq")


def replay(prefix: str, transaction: str, subject: str, attempt: str) -> str:
    """MessagePack with TTL `REPLAY_TTL_S`: what a transaction answered one attempt, given
    again to that attempt (`replay.py`)."""
    return k(prefix, "rp", transaction, subject, attempt)


def terminal_calls(prefix: str, terminal_id: str) -> str:
    """Set: a terminal's live call ids."""
    return k(prefix, "tc", terminal_id)


def request_made(prefix: str, terminal_id: str, request_id: str) -> str:
    """String with TTL `routing.REQUEST_KEPT_S`: the call a kiosk's request key made (the
    Lua `ENQUEUE` writes and reads it: a late copy of the request makes no second call)."""
    return k(prefix, "rq", terminal_id, request_id)


def answering(prefix: str, instance: str) -> str:
    """Set: live call ids whose last answer a node instance made (`accn` of the call)."""
    return k(prefix, "an", instance)


def state_marker(prefix: str) -> str:
    """String: present while Redis holds routing state; gone = Redis lost it (see node.py)."""
    return k(prefix, "state")


# ---- presences and the bus (presence.py, bus.py) ----------------------------------------

def presence(prefix: str, principal: str) -> str:
    """Hash: `resume`, `epoch`, `connected`, `node` (the instance holding the socket)."""
    return k(prefix, "p", principal)


def epochs(prefix: str) -> str:
    """Integer: the last presence epoch given (`presence.py`): an epoch is never given twice,
    so a late disconnect of an old connection cannot match a presence made anew."""
    return k(prefix, "ep")


def node_principals(prefix: str, instance: str) -> str:
    """Set: principals connected to one node instance (taken over when it dies)."""
    return k(prefix, "pn", instance)


def node_channel(prefix: str, instance: str) -> str:
    """Pub/sub channel: messages for the principals connected to one node instance."""
    return k(prefix, "ch", instance)


def all_channel(prefix: str) -> str:
    """Pub/sub channel: broadcasts, kicks, "replaced" and "queue changed" notices."""
    return k(prefix, "ch", "*all")


# ---- timers (scheduler.py) ----------------------------------------------------------

def timers(prefix: str) -> str:
    """Sorted set: timer key scored by due time (epoch seconds)."""
    return k(prefix, "t")


def timer_payloads(prefix: str) -> str:
    """Hash: timer key -> JSON `{kind, payload}`."""
    return k(prefix, "tp")


def timer_leases(prefix: str) -> str:
    """Sorted set: claimed timers whose handler has not finished, scored by lease deadline
    (epoch seconds). Member: the claim, `key SEP instance SEP n` (the claiming node)."""
    return k(prefix, "tl")


def timer_claims(prefix: str) -> str:
    """Hash: claim -> JSON `{kind, payload}`; deleted with its lease when acknowledged."""
    return k(prefix, "tk")


# ---- nodes (node.py) ----------------------------------------------------------------

def nodes(prefix: str) -> str:
    """Hash: registered node instances -> their configured node_id (for the SQL log)."""
    return k(prefix, "nodes")


def protocols(prefix: str) -> str:
    """Hash: instance -> the protocol between nodes it speaks (`versions.PROTOCOL`), written
    with every heartbeat; an instance without one is from before the levels."""
    return k(prefix, "pl")


def loads(prefix: str) -> str:
    """Hash: instance -> its open signalling sockets, written with every heartbeat (the
    fair share of `rebalance.py` counts only the instances whose heartbeat is alive)."""
    return k(prefix, "ld")


def heartbeat(prefix: str, instance: str) -> str:
    """String with TTL `HEARTBEAT_TTL_S`: the instance is alive while it exists."""
    return k(prefix, "hb", instance)


def fence(prefix: str, instance: str) -> str:
    """String with TTL `FENCE_TTL_S`, set by the survivor before it takes the instance
    over: every routing transaction, presence, timer claim and heartbeat of that instance
    is refused while it exists (a stalled node woken up must not act for principals it no
    longer holds); the instance lifts it once it has closed its connections and the
    takeover is over (`node.py`)."""
    return k(prefix, "fence", instance)


def reap_lock(prefix: str, instance: str) -> str:
    """String with TTL `REAP_LOCK_TTL_S`: the survivor taking a dead instance over."""
    return k(prefix, "reap", instance)


# ---- the recorder pool (recorders.py) --------------------------------------------------

def recorders_live(prefix: str) -> str:
    """Sorted set, scores 0: live recorder names in byte order (ties go to the first)."""
    return k(prefix, "rc", "live")


def recorder_capacity(prefix: str) -> str:
    """Hash: live recorder name -> the capacity it announced."""
    return k(prefix, "rc", "cap")


def recorder_calls(prefix: str, name: str) -> str:
    """Set: the call ids one live recorder records (its load is the set's size)."""
    return k(prefix, "rc", "held", name)


def recorder_of(prefix: str) -> str:
    """Hash: recorded call id -> its recorder's name."""
    return k(prefix, "rc", "of")


def recorder_segments(prefix: str) -> str:
    """Hash: call id -> recorders the call has had (its current segment); kept until it ends."""
    return k(prefix, "rc", "seg")


def recorder_waiting(prefix: str) -> str:
    """Sorted set: calls that want a recorder and have none, scored by `recorder_sequence`."""
    return k(prefix, "rc", "wait")


def recorder_sequence(prefix: str) -> str:
    """Counter: the order in which calls started waiting for a recorder."""
    return k(prefix, "rc", "seq")

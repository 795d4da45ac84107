"""The Redis backend: several `vwin serve` nodes sharing routing state through Redis.

Chosen by `[routing] backend = "redis"`. Each module implements one interface
of `signaling.backend` (router, bus, scheduler, presences) or one node-level
concern (heartbeat, dead-node takeover); `keys` holds every key name and timing.
"""

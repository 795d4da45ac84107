"""The core application state, under typed `web.AppKey`s.

Services with their own module keep their key beside them (`recording.embedded.RECORDING`,
`joint.JOINT`), so this module imports none of them and none of them imports it back in a
circle.
"""

from __future__ import annotations

import weakref

from aiohttp import web

from server.auth import AuthService
from server.config import Settings
from server.connection import Connection
from server.storage.db import Database
from signaling.backend import MessageBus
from signaling.switchboard import Switchboard

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
AUTH = web.AppKey("auth", AuthService)
BOARD = web.AppKey("board", Switchboard)
BUS = web.AppKey("bus", MessageBus)
CONNECTIONS = web.AppKey("connections", weakref.WeakSet[Connection])
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse[bool]])
HEALTH = web.AppKey("health", dict[str, str])
NODE_ID = web.AppKey("node_id", str)

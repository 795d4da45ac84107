"""Every piece of application state, under a typed `web.AppKey`."""

from __future__ import annotations

import weakref

from aiohttp import web

from server.auth import AuthService
from server.config import Settings
from server.conncaps import AddressCaps
from server.connection import Connection
from server.joint import JointServices
from server.recording.embedded import RecordingServices
from server.storage.db import Database
from signaling.memory import LocalBus
from signaling.switchboard import Switchboard

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
AUTH = web.AppKey("auth", AuthService)
BOARD = web.AppKey("board", Switchboard)
BUS = web.AppKey("bus", LocalBus)
CONNECTIONS = web.AppKey("connections", weakref.WeakSet[Connection])
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse[bool]])
HEALTH = web.AppKey("health", dict[str, str])
JOINT = web.AppKey("joint", JointServices)
RECORDING = web.AppKey("recording", RecordingServices)
CAPS = web.AppKey("caps", AddressCaps)

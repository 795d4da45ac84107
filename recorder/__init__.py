"""The recorder process (`vwin recorder`): a WebSocket client of `/ws` that records sessions.

It imports nothing from `server/`: the server only starts it and reads the files and
manifests it writes (`recorder.manifest`).
"""

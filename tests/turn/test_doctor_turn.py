"""`vwin doctor`'s TURN check against a real coturn (the fixture of tests/turn)."""

from __future__ import annotations

from server import doctor
from tests.turn.coturn import Coturn, free_port


async def test_turn_server_allocates_a_relay_with_the_rest_credentials(coturn: Coturn) -> None:
    status, detail = await doctor.check_turn(coturn.settings())
    assert status == "ok" and detail.count("-> relay 127.0.0.1:") == 2, detail
    status, detail = await doctor.check_turn(coturn.settings(secret="not-the-secret"))
    assert status == "FAIL", detail
    dead = coturn.settings(urls=[f"turn:127.0.0.1:{free_port()}?transport=tcp"])
    assert (await doctor.check_turn(dead))[0] == "FAIL"

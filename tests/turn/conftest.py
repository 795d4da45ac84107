from tests.turn.coturn import coturn  # noqa: F401 (fixture)

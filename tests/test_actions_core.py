"""Joint-action state machine and its configuration, without I/O."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from signaling.actions import (
    ActionConfigError,
    ActionError,
    ActionType,
    Enterprise,
    JointAction,
    get_action_type,
    load_action_types,
)
from signaling.audit import AuditEntry, next_entry, verify_chain
from signaling.errors import Refused

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "actions.toml"
NOW = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=7)
SHOP = Enterprise(name=" 嘉定新城小吃店 ", uscc="92371000MA3MXH0E3W")


@pytest.fixture(scope="module")
def types() -> dict[str, ActionType]:
    return load_action_types(CONFIG)


@pytest.fixture
def deregistration(types: dict[str, ActionType]) -> JointAction:
    action, _ = JointAction.start(
        "act-1",
        types["sole_proprietor_deregistration"],
        SHOP,
        started_by="reg-1",
        now=NOW,
    )
    return action


def test_shipped_config(types: dict[str, ActionType]) -> None:
    assert set(types) == {"sole_proprietor_deregistration", "registered_address_change"}
    dereg = types["sole_proprietor_deregistration"]
    assert dereg.name_zh == "个体工商户注销"
    assert [(s.id, s.department) for s in dereg.steps] == [
        ("licence_cancelled", "market_regulation"),
        ("tax_clearance_confirmed", "tax"),
    ]
    move = types["registered_address_change"]
    assert move.departments == ["market_regulation", "tax"]
    assert move.fields == ["new_address"]
    assert all(s.name_zh and s.name_en for t in types.values() for s in t.steps)


def test_start_records_enterprise_and_steps(
    types: dict[str, ActionType], deregistration: JointAction
) -> None:
    assert deregistration.state == "open"
    assert deregistration.enterprise == Enterprise(name="嘉定新城小吃店", uscc="92371000MA3MXH0E3W")
    assert [s.signed_by for s in deregistration.steps] == [None, None]
    _, event = JointAction.start(
        "act-2",
        types["registered_address_change"],
        SHOP,
        started_by="reg-1",
        now=NOW,
        fields={"new_address": "上海市嘉定区裕民南路 1 号"},
    )
    assert (event.event, event.actor, event.action_id) == ("started", "reg-1", "act-2")
    assert event.data["fields"] == {"new_address": "上海市嘉定区裕民南路 1 号"}
    assert event.data["enterprise"]["uscc"] == "92371000MA3MXH0E3W"


def test_both_departments_sign_and_the_action_completes(deregistration: JointAction) -> None:
    first = deregistration.sign("licence_cancelled", "market_regulation", "reg-1", NOW)
    assert [e.event for e in first] == ["step_signed"]
    assert _state(deregistration) == "open"
    second = deregistration.sign("tax_clearance_confirmed", "tax", "tax-7", LATER)
    assert [e.event for e in second] == ["step_signed", "completed"]
    assert second[0].data == {"step": "tax_clearance_confirmed", "department": "tax"}
    assert deregistration.state == "completed"
    assert [(s.signed_by, s.signed_at) for s in deregistration.steps] == [
        ("reg-1", NOW),
        ("tax-7", LATER),
    ]
    assert deregistration.record.closed_at == LATER


def _state(action: JointAction) -> str:
    """Read the state afresh (a plain call, so type checkers do not pin it)."""
    return action.state


def _refusal(action: JointAction, *args: object) -> ActionError:
    before = action.record
    with pytest.raises(ActionError) as info:
        action.sign(*args)  # type: ignore[arg-type]
    assert action.record == before, "a refused signature must not change the action"
    assert isinstance(info.value, Refused)
    return info.value


def test_tax_specialist_cannot_sign_the_registration_step(deregistration: JointAction) -> None:
    error = _refusal(deregistration, "licence_cancelled", "tax", "tax-7", NOW)
    assert error.code == "wrong_department"
    assert error.message == "step 'licence_cancelled' is signed by market_regulation, not tax"


def test_a_step_cannot_be_signed_twice(deregistration: JointAction) -> None:
    deregistration.sign("licence_cancelled", "market_regulation", "reg-1", NOW)
    error = _refusal(deregistration, "licence_cancelled", "market_regulation", "reg-2", LATER)
    assert error.code == "already_signed"
    assert "reg-1" in error.message


def test_unknown_step_is_named(deregistration: JointAction) -> None:
    error = _refusal(deregistration, "stamp", "tax", "tax-7", NOW)
    assert error.code == "unknown_step"
    assert "'stamp'" in error.message


def test_rejected_action_is_closed(deregistration: JointAction) -> None:
    event = deregistration.reject("  unpaid tax for 2025 ", "tax-7", LATER)
    assert (event.event, event.data) == ("rejected", {"reason": "unpaid tax for 2025"})
    assert deregistration.state == "rejected"
    assert deregistration.record.rejected_by == "tax-7"
    error = _refusal(deregistration, "tax_clearance_confirmed", "tax", "tax-7", LATER)
    assert error.code == "not_open"
    with pytest.raises(ActionError, match="already rejected"):
        deregistration.reject("again", "tax-7", LATER)


def test_completed_action_refuses_rejection(deregistration: JointAction) -> None:
    deregistration.sign("licence_cancelled", "market_regulation", "reg-1", NOW)
    deregistration.sign("tax_clearance_confirmed", "tax", "tax-7", NOW)
    with pytest.raises(ActionError) as info:
        deregistration.reject("too late", "tax-7", LATER)
    assert info.value.code == "not_open"
    assert deregistration.state == "completed"


def test_rejection_needs_a_reason(deregistration: JointAction) -> None:
    with pytest.raises(ActionError) as info:
        deregistration.reject("   ", "tax-7", NOW)
    assert info.value.code == "reason_required"
    assert deregistration.state == "open"


@pytest.mark.parametrize(
    ("enterprise", "fields", "code", "words"),
    [
        (Enterprise(name="店", uscc="92371000MA3MXH0E3X"), {}, "invalid_enterprise", "'W'"),
        (Enterprise(name=" ", uscc="92371000MA3MXH0E3W"), {}, "invalid_enterprise", "name"),
        (SHOP, {"new_adress": "x"}, "unknown_field", "'new_adress'"),
        (SHOP, {}, "missing_field", "'new_address'"),
        (SHOP, {"new_address": "  "}, "missing_field", "'new_address'"),
    ],
)
def test_start_refuses_bad_input(
    types: dict[str, ActionType],
    enterprise: Enterprise,
    fields: dict[str, str],
    code: str,
    words: str,
) -> None:
    with pytest.raises(ActionError) as info:
        JointAction.start(
            "act-3",
            types["registered_address_change"],
            enterprise,
            started_by="reg-1",
            now=NOW,
            fields=fields,
        )
    assert info.value.code == code
    assert words in info.value.message


def test_unknown_action_type_is_named(types: dict[str, ActionType]) -> None:
    with pytest.raises(ActionError) as info:
        get_action_type(types, "merger")
    assert info.value.code == "unknown_action"
    assert "'merger'" in info.value.message
    assert "sole_proprietor_deregistration" in info.value.message


def test_naive_time_is_refused(deregistration: JointAction) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        deregistration.sign(
            "licence_cancelled", "market_regulation", "reg-1", dt.datetime(2026, 3, 10)
        )
    assert deregistration.steps[0].signed_by is None


def test_restore_round_trips_through_json_and_refuses_inconsistent_records(
    types: dict[str, ActionType], deregistration: JointAction
) -> None:
    deregistration.sign("licence_cancelled", "market_regulation", "reg-1", NOW)
    stored = msgspec.json.encode(deregistration.record)
    record = msgspec.json.decode(stored, type=type(deregistration.record))
    restored = JointAction.restore(record, types["sole_proprietor_deregistration"])
    restored.sign("tax_clearance_confirmed", "tax", "tax-7", LATER)
    assert restored.state == "completed"
    with pytest.raises(ValueError, match="does not match type"):
        JointAction.restore(record, types["registered_address_change"])
    lying = msgspec.structs.replace(record, state="completed")
    with pytest.raises(ValueError, match="steps disagree"):
        JointAction.restore(lying, types["sole_proprietor_deregistration"])


def test_events_feed_an_intact_audit_chain(types: dict[str, ActionType]) -> None:
    action, started = JointAction.start(
        "act-9", types["sole_proprietor_deregistration"], SHOP, started_by="reg-1", now=NOW
    )
    events = [
        started,
        *action.sign("licence_cancelled", "market_regulation", "reg-1", NOW),
        *action.sign("tax_clearance_confirmed", "tax", "tax-7", LATER),
    ]
    log: list[AuditEntry] = []
    for event in events:
        log.append(
            next_entry(
                log[-1] if log else None,
                ts=event.at,
                actor=event.actor,
                action_id=event.action_id,
                event=event.event,
                data=event.data,
            )
        )
    assert [e.event for e in log] == ["started", "step_signed", "step_signed", "completed"]
    assert verify_chain(log) is None


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "actions.toml"
    path.write_text(body, encoding="utf-8")
    return path


STEP = '[[actions.steps]]\nid = "s"\ndepartment = "tax"\nname_zh = "步"\nname_en = "Step"\n'
ACTION = '[[actions]]\nid = "a"\nname_zh = "甲"\nname_en = "A"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (ACTION + 'colour = "red"\n' + STEP, "unknown field `colour`"),
        (ACTION + STEP + 'signer = "x"\n', "unknown field `signer` - at `$.actions[0].steps[0]`"),
        (ACTION + "steps = []\n", "action 'a' has no steps"),
        (ACTION + STEP + ACTION + STEP, "action 'a' is defined twice"),
        (ACTION + STEP + STEP, "step 's' is listed twice"),
        (ACTION + 'fields = ["x", "x"]\n' + STEP, "field 'x' is listed twice"),
        (ACTION.replace('"a"', '"A b"') + STEP, "'A b' is not a lower-case identifier"),
        (ACTION + STEP.replace('"tax"', '""'), "'' is not a lower-case identifier"),
        ("[[actions]\n", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_naming_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = _config(tmp_path, body)
    with pytest.raises(ActionConfigError) as info:
        load_action_types(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)

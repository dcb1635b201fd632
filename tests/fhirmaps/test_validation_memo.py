"""R4B validation answers are remembered by content, and can be computed in another process."""

from __future__ import annotations

import copy

from fhirmaps import r4b

VALID = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "CEA"}}
INVALID = {"resourceType": "Observation", "id": "o2", "status": "resulted", "code": {"text": 42}}


def test_check_batch_gives_the_same_answers_as_validation_problem() -> None:
    checked = r4b.check_batch([VALID, INVALID])
    assert [problem for _key, problem in checked] == [
        r4b.validation_problem(VALID),
        r4b.validation_problem(INVALID),
    ]
    assert checked[0][1] is None and checked[1][1] and "not valid FHIR R4B" in checked[1][1]


def test_remembered_answers_are_used_and_content_changes_are_not_confused(monkeypatch) -> None:
    calls: list[str] = []
    real = r4b.validate

    def counting(resource: dict) -> str | None:
        calls.append(resource["id"])
        return real(resource)

    monkeypatch.setattr(r4b, "validate", counting)
    fresh = copy.deepcopy(VALID) | {"id": "o-memo"}
    r4b.remember([(r4b.fingerprint(fresh), "remembered problem")])
    assert r4b.validation_problem(copy.deepcopy(fresh)) == "remembered problem"
    assert calls == []
    changed = copy.deepcopy(fresh) | {"status": "amended"}
    assert r4b.validation_problem(changed) is None  # different content: validated afresh
    assert calls == ["o-memo"]


def test_inside_validations_not_remembered_nothing_is_looked_up_or_kept(monkeypatch) -> None:
    fresh = copy.deepcopy(VALID) | {"id": "o-once"}
    r4b.remember([(r4b.fingerprint(fresh), "remembered problem")])
    unseen = copy.deepcopy(VALID) | {"id": "o-unseen"}
    with r4b.validations_not_remembered():
        assert r4b.validation_problem(copy.deepcopy(fresh)) is None  # validated, not looked up
        assert r4b.validation_problem(unseen) is None
    assert r4b.fingerprint(unseen) not in r4b._MEMO  # nothing kept
    assert r4b.validation_problem(copy.deepcopy(fresh)) == "remembered problem"  # on again outside

"""The shipped definitions load and say what INSTRUMENTS.md proposes.

The expected tables below are typed from INSTRUMENTS.md ("Proposed grids", "Proposed citizen
questionnaire"), not from the YAML files, so that an edit of a definition that drifts from the
proposal fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import surveys
from surveys import (
    CHANNELS,
    DEFAULT_CHANNEL_WEIGHTS,
    DEFAULT_TESTS_PER_CHANNEL,
    Instrument,
    Item,
    canonical_json,
    instrument_from_dict,
    instrument_sha256,
)

DEFINITIONS = Path(surveys.__file__).parent / "definitions"

# item key: (type, weight, (full, partial) thresholds or None, knock-out or None)
# Knock-outs: "fail_if:<value>" or "above:<limit> <unit>". Items with weight 0 are listed only
# when they carry a knock-out. Durations are in seconds, delays in working days.
EXPECTED_GRIDS: dict[
    str, dict[str, tuple[str, float, tuple[float, float | None] | None, str | None]]
] = {
    "guichet": {
        "hours_match_website": ("yes_no", 10, None, None),
        "signage": ("yes_no", 10, None, None),
        "step_free": ("yes_no", 10, None, None),
        "wait": ("duration", 20, (15 * 60, 20 * 60), None),  # full ≤ 15 min, half ≤ 20 min
        "courtesy": ("scale1_4", 15, None, None),
        "agent_identifiable": ("yes_no", 5, None, None),
        "answer_correct": ("graded", 25, None, None),
        "answer_refused": ("yes_no", 0, None, "fail_if:yes"),  # KO if the answer is refused
        "clean_confidential": ("yes_no", 5, None, None),
    },
    "telephone": {
        "number_found": ("yes_no", 10, None, None),
        "connected": ("yes_no", 20, None, "fail_if:no"),  # connects within 3 tries, KO
        "rings": ("count", 15, (5, None), None),  # full ≤ 5 rings
        "greeting": ("yes_no", 5, None, None),
        "transfer": ("choice_one", 10, None, None),  # ≤ 1 transfer, not cut off
        "answer_correct": ("graded", 25, None, None),
        "courtesy": ("scale1_4", 10, None, None),
        "out_of_hours_message": ("yes_no", 5, None, None),
    },
    "courriel": {
        "contact_found": ("yes_no", 10, None, None),
        "ack_delay": ("delay", 15, (5, None), None),
        "answer_delay": ("delay", 25, (5, 10), "above:30 working_days"),  # KO: none by day 30
        "answer_correct": ("graded", 25, None, None),
        "agent_named": ("yes_no", 10, None, None),
        "clarity": ("scale1_4", 15, None, None),
    },
    "courrier": {
        "ack_delay": ("delay", 15, (10, None), None),
        "answer_delay": ("delay", 30, (15, None), "above:2 months"),  # KO: none in 2 months
        "agent_named": ("yes_no", 15, None, None),
        "answer_correct": ("graded", 25, None, None),
        "clarity": ("scale1_4", 15, None, None),
    },
    "site": {
        "contact_current": ("yes_no", 20, None, None),
        "accessibility_info": ("yes_no", 10, None, None),
        "procedure_found": ("yes_no", 15, None, None),
        "procedure_online": ("yes_no", 15, None, None),
        "online_appointment": ("yes_no", 10, None, None),
        "mobile_friendly": ("yes_no", 10, None, None),
        "feedback_route": ("yes_no", 10, None, None),
        "clarity": ("scale1_4", 10, None, None),
    },
    "reseaux": {
        "answer_received": ("yes_no", 50, None, None),
        "answer_delay": ("delay", 25, (2, None), None),
        "answer_correct": ("graded", 25, None, None),
    },
}

CITIZEN_INDEX = [  # items 3–11, equal weights
    "satisfied",
    "trust",
    "effective",
    "ease",
    "efficiency",
    "equity",
    "employees",
    "courtesy",
    "clarity",
]


def _knockout(item: Item) -> str | None:
    rule = item.knockout
    if rule is None:
        return None
    if rule.fail_if:
        return "fail_if:" + " ".join(str(value) for value in rule.fail_if)
    assert rule.above is not None
    return f"above:{rule.above:g} {rule.unit}"


def _row(item: Item) -> tuple[str, float, tuple[float, float | None] | None, str | None]:
    thresholds = (item.thresholds.full, item.thresholds.partial) if item.thresholds else None
    return item.type, item.weight, thresholds, _knockout(item)


def test_the_shipped_files_are_the_defaults(defaults: dict[str, Instrument]) -> None:
    files = sorted(path.stem for path in DEFINITIONS.glob("*.yaml"))
    assert files == sorted(defaults)
    assert set(defaults) == {"citizen"} | {f"grid-{channel}" for channel in CHANNELS}


def test_every_default_loads_from_its_file(defaults: dict[str, Instrument]) -> None:
    for key, instrument in defaults.items():
        loaded = surveys.load_instrument(DEFINITIONS / f"{key}.yaml")
        assert loaded == instrument
        assert instrument.key == key


@pytest.mark.parametrize("channel", sorted(EXPECTED_GRIDS))
def test_grid_weights_thresholds_and_knockouts_match_instruments_md(
    defaults: dict[str, Instrument], channel: str
) -> None:
    grid = defaults[f"grid-{channel}"]
    assert grid.kind == "grid"
    assert grid.channel == channel
    expected = EXPECTED_GRIDS[channel]
    actual = {
        item.key: _row(item) for item in grid.items if item.weight > 0 or item.knockout is not None
    }
    assert actual == expected
    assert grid.weight == pytest.approx(100)


def test_grid_scored_choices_follow_the_proposal(defaults: dict[str, Instrument]) -> None:
    transfer = defaults["grid-telephone"].item("transfer")  # ≤ 1 transfer and not cut off
    scores = {choice.value: choice.score for choice in transfer.choices}
    assert scores == {"none": 100, "one": 100, "several": 0, "cut_off": 0}


def test_channel_weights_and_tests_per_channel_match_instruments_md() -> None:
    assert DEFAULT_CHANNEL_WEIGHTS == {
        "guichet": 25,
        "telephone": 25,
        "courriel": 20,
        "site": 15,
        "courrier": 10,
        "reseaux": 5,
    }
    assert DEFAULT_TESTS_PER_CHANNEL == {
        "guichet": 2,
        "telephone": 3,
        "courriel": 2,
        "courrier": 1,
        "site": 1,
        "reseaux": 1,
    }
    assert set(CHANNELS) == {"guichet", "telephone", "courriel", "courrier", "site", "reseaux"}


def test_citizen_questionnaire_follows_the_proposal(defaults: dict[str, Instrument]) -> None:
    citizen = defaults["citizen"]
    assert citizen.kind == "survey"
    assert citizen.channel is None
    weighted = [item.key for item in citizen.items if item.weight > 0]
    assert weighted == CITIZEN_INDEX
    assert {citizen.item(key).weight for key in weighted} == {1}
    for key in CITIZEN_INDEX:
        item = citizen.item(key)
        assert item.type == "likert5"
        assert item.not_applicable, f"{key} offers “non concerné”"
    channel = citizen.channel_item
    assert channel is not None and channel.key == "channel"
    assert [choice.value for choice in channel.choices] == list(CHANNELS)
    assert citizen.item("overall").type == "smileys3"
    assert citizen.item("reached").type == "yes_no"
    assert citizen.item("delay_kept").type == "yes_no_dk"
    profile = citizen.weighting_variables
    assert [item.key for item in profile] == ["age_band", "sex"]
    for item in profile:
        assert any(choice.missing for choice in item.choices), "prefer not to say"
    comment = citizen.item("comment")
    assert comment.type == "text" and comment.redact_contacts
    clarity = [option.label.fr for option in citizen.item("clarity").options]
    assert clarity[0] == "Pas claires du tout" and clarity[4] == "Très claires"


def test_every_item_has_a_source_and_both_languages(defaults: dict[str, Instrument]) -> None:
    for instrument in defaults.values():
        assert instrument.source
        for text in (instrument.title, instrument.introduction):
            assert text is not None and text.fr and text.en and text.fr != text.en
        for section in instrument.sections:
            assert section.title.fr and section.title.en
        for item in instrument.items:
            assert item.source, f"{instrument.key}/{item.key} has no source"
            assert item.label.fr and item.label.en
            for option in item.options:
                assert option.label.fr and option.label.en
        for theme in instrument.themes:
            assert theme.source


def test_weighted_grid_items_are_required(defaults: dict[str, Instrument]) -> None:
    for key, instrument in defaults.items():
        if instrument.kind != "grid":
            continue
        for item in instrument.items:
            if item.weight > 0 and item.answerable:
                assert item.required, f"{key}/{item.key}: observations must all be recorded"


def test_canonical_json_is_deterministic_and_round_trips(defaults: dict[str, Instrument]) -> None:
    for instrument in defaults.values():
        text = canonical_json(instrument)
        assert text == canonical_json(instrument.model_copy())
        again = instrument_from_dict(json.loads(text))
        assert again == instrument
        assert canonical_json(again) == text
        assert len(instrument_sha256(instrument)) == 64
    hashes = {instrument_sha256(instrument) for instrument in defaults.values()}
    assert len(hashes) == len(defaults)


def test_hash_ignores_layout_but_not_meaning(write: Callable[[str, str], Path]) -> None:
    base = DEFINITIONS / "grid-reseaux.yaml"
    original = surveys.load_instrument(base)
    reordered = json.loads(canonical_json(original))
    reordered = dict(reversed(list(reordered.items())))
    as_json = write(json.dumps(reordered, indent=4), "reordered.json")
    assert instrument_sha256(surveys.load_instrument(as_json)) == instrument_sha256(original)
    changed = base.read_text(encoding="utf-8").replace("weight: 50", "weight: 49", 1)
    assert instrument_sha256(surveys.instrument_from_yaml(changed)) != instrument_sha256(original)

"""validate_answers: clean answers or per-item errors; relevance; form pages."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from surveys import (
    AnswerValidation,
    Instrument,
    form_pages,
    redact_contacts,
    relevant_items,
    validate_answers,
)

VALID = {
    "channel": "telephone",
    "agree": "4",
    "four": "2",
    "ten": "10",
    "mood": 3,
    "yn": True,
    "ynd": "dk",
    "grade": "0.5",
    "pick": "good",
    "many": "a b",
    "rings": "3",
    "wait": "90.5",
    "sent": "2024-05-02",
    "got": dt.date(2024, 5, 6),
    "age": "young",
    "words": "Très bien, merci.",
}


def _codes(result: AnswerValidation) -> dict[str, str]:
    return {error.item: error.code for error in result.errors}


def test_valid_form_answers_are_normalised(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, VALID)
    assert result.ok, result.errors
    assert result.answers == {
        "channel": "telephone",
        "agree": 4,
        "four": 2,
        "ten": 10,
        "mood": 3,
        "yn": "yes",
        "ynd": "dk",
        "grade": 0.5,
        "pick": "good",
        "many": ["a", "b"],
        "rings": 3,
        "wait": 90.5,
        "sent": "2024-05-02",
        "got": "2024-05-06",
        "age": "young",
        "words": "Très bien, merci.",
    }
    assert result.dropped == ()
    assert "took" in result.relevant and "intro" in result.relevant


def test_clean_answers_validate_to_themselves(kitchen_sink: Instrument) -> None:
    clean = validate_answers(kitchen_sink, VALID).answers
    again = validate_answers(kitchen_sink, clean)
    assert again.ok and again.answers == clean


def test_multiple_choices_follow_the_option_order(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, {**VALID, "many": ["b", "a"]})
    assert result.answers["many"] == ["a", "b"]


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("nope", 1, "unknown_item"),
        ("intro", "hello", "read_only"),
        ("took", 3, "read_only"),
        ("rings", "three", "invalid_type"),
        ("rings", 2.5, "invalid_type"),
        ("rings", True, "invalid_type"),
        ("rings", 51, "out_of_range"),
        ("rings", -1, "out_of_range"),
        ("wait", float("nan"), "invalid_type"),
        ("wait", "inf", "invalid_type"),
        ("wait", -5, "out_of_range"),
        ("wait", 4000, "constraint"),
        ("agree", 6, "out_of_range"),
        ("agree", "0", "out_of_range"),
        ("agree", [4], "invalid_type"),
        ("agree", {"v": 4}, "invalid_type"),
        ("agree", "great", "invalid_choice"),
        ("four", "na", "invalid_choice"),
        ("ten", -1, "out_of_range"),
        ("ten", 10.5, "out_of_range"),
        ("grade", 0.25, "out_of_range"),
        ("yn", "oui", "invalid_choice"),
        ("yn", 1, "invalid_choice"),
        ("pick", "great", "invalid_choice"),
        ("pick", ["good"], "invalid_type"),
        ("many", ["a", "zz"], "invalid_choice"),
        ("many", ["a", "a"], "invalid_choice"),
        ("many", {"a": 1}, "invalid_type"),
        ("sent", "2024-02-30", "invalid_date"),
        ("sent", "02/05/2024", "invalid_date"),
        ("sent", dt.datetime(2024, 5, 2, 10, 0), "invalid_date"),
        ("sent", 20240502, "invalid_date"),
        ("got", "2024-05-01", "constraint"),  # before "sent"
        ("words", "x" * 81, "too_long"),
        ("words", 42, "invalid_type"),
    ],
)
def test_per_item_errors(kitchen_sink: Instrument, key: str, value: object, code: str) -> None:
    result = validate_answers(kitchen_sink, {**VALID, key: value})
    assert not result.ok
    assert _codes(result) == {key: code}
    assert key not in result.answers or key == "nope"
    error = result.errors[0]
    assert error.message
    assert error.model_dump() == {"item": key, "code": code, "message": error.message}


def test_constraints_on_other_items_wait_for_their_answers(kitchen_sink: Instrument) -> None:
    # got must be on or after sent; while sent is unanswered, got cannot be checked
    without_sent = {key: value for key, value in VALID.items() if key != "sent"}
    result = validate_answers(kitchen_sink, without_sent, sections=[])
    assert result.ok and result.answers["got"] == "2024-05-06"


def test_constraint_messages_come_from_the_definition(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, {**VALID, "wait": 4000})
    assert result.errors[0].message == "One hour at most"


def test_not_applicable_where_offered(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, {**VALID, "agree": "na", "yn": "na"})
    assert result.ok and result.answers["agree"] == "na" and result.answers["yn"] == "na"


def test_required_only_when_relevant(kitchen_sink: Instrument) -> None:
    missing = {key: value for key, value in VALID.items() if key not in ("channel", "many")}
    assert _codes(validate_answers(kitchen_sink, missing)) == {
        "channel": "required",
        "many": "required",
    }
    # "yn" = no hides the second section: its required items are no longer required and its
    # answers are dropped
    hidden = validate_answers(kitchen_sink, {**missing, "channel": "guichet", "yn": "no"})
    assert hidden.ok, hidden.errors
    # "ynd" is relevant only if yn = yes or channel = telephone
    assert set(hidden.dropped) == {"ynd", "pick", "rings", "wait", "sent", "got"}
    assert "pick" not in hidden.answers and "rings" not in hidden.relevant


def test_empty_values_mean_no_answer(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, {**VALID, "agree": "", "words": "   ", "pick": None})
    assert result.ok
    assert not {"agree", "words", "pick"} & set(result.answers)
    assert _codes(validate_answers(kitchen_sink, {**VALID, "many": []})) == {"many": "required"}


def test_skip_logic_uses_clean_earlier_answers(kitchen_sink: Instrument) -> None:
    without_a = validate_answers(kitchen_sink, {**VALID, "many": "b"})
    assert "rings" in without_a.dropped
    # an invalid earlier answer counts as unanswered for what follows
    invalid_many = validate_answers(kitchen_sink, {**VALID, "many": "zz"})
    assert "rings" in invalid_many.dropped


def test_required_checks_limited_to_a_page(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, {"channel": "guichet"}, sections=["first"])
    assert _codes(result) == {"yn": "required"}
    result = validate_answers(kitchen_sink, {"channel": "guichet", "agree": 9}, sections=[])
    assert _codes(result) == {"agree": "out_of_range"}


def test_delay_dates_out_of_order(defaults: dict[str, Instrument]) -> None:
    grid = defaults["grid-courriel"]
    answers = {
        "contact_found": "yes",
        "sent_on": "2024-05-10",
        "ack_received": "yes",
        "ack_on": "2024-05-09",
        "answer_received": "no",
    }
    result = validate_answers(grid, answers)
    assert _codes(result) == {"ack_on": "date_order"}
    assert "ack_on" not in result.answers


def test_relevant_items_and_pages(kitchen_sink: Instrument) -> None:
    keys = [item.key for item in relevant_items(kitchen_sink, {"channel": "guichet", "yn": "no"})]
    assert keys == [
        "intro",
        "channel",
        "agree",
        "four",
        "ten",
        "mood",
        "yn",
        "grade",
        "age",
        "words",
    ]
    pages = form_pages(kitchen_sink, {"channel": "guichet", "yn": "no"})
    assert [page.section.key for page in pages] == ["first", "about"]
    pages = form_pages(kitchen_sink, {"channel": "guichet", "yn": "yes", "many": ["a"]})
    assert [page.section.key for page in pages] == ["first", "second", "about"]
    second = [item.key for item in pages[1].items]
    assert second == ["pick", "many", "rings", "wait", "sent", "got"]  # no computed delay
    pages = form_pages(kitchen_sink, {"channel": "guichet", "yn": "yes", "many": ["b"]})
    assert "rings" not in [item.key for item in pages[1].items]


def test_citizen_skip_logic(defaults: dict[str, Instrument]) -> None:
    citizen = defaults["citizen"]
    at_the_counter = validate_answers(
        citizen, {"channel": "guichet", "overall": 3, "reached": "yes"}
    )
    assert at_the_counter.ok and at_the_counter.dropped == ("reached",)
    by_phone = validate_answers(citizen, {"channel": "telephone", "overall": 3, "reached": "no"})
    assert by_phone.ok and by_phone.answers["reached"] == "no"


def test_render_metadata_for_forms(kitchen_sink: Instrument) -> None:
    agree = kitchen_sink.item("agree")
    assert [option.value for option in agree.options] == [1, 2, 3, 4, 5, "na"]
    assert agree.options[0].label.fr == "Pas du tout d'accord"
    assert agree.options[-1].missing
    four = kitchen_sink.item("four")
    assert [option.label.en for option in four.options] == ["One", "Two", "Three", "Four"]
    assert kitchen_sink.item("ynd").options[-1].value == "dk"
    assert kitchen_sink.item("words").text_max_length == 80
    assert kitchen_sink.item("rings").max == 50
    assert kitchen_sink.item("age").is_weighting_variable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("écrivez à jean.dupont@example.fr", "écrivez à [adresse masquée]"),
        ("tél. 06 12 34 56 78 !", "tél. [numéro masqué] !"),
        ("0612345678", "[numéro masqué]"),
        ("01.23.45.67.89", "[numéro masqué]"),
        ("+33 6 12 34 56 78", "[numéro masqué]"),
        ("+33 (0)1 23 45 67 89", "[numéro masqué]"),
        ("12 personnes, 3 guichets, le 2024-05-02 à 10h30", None),
        ("dossier 2024-00123", None),
    ],
)
def test_contact_details_are_masked(text: str, expected: str | None) -> None:
    assert redact_contacts(text) == (text if expected is None else expected)


def test_text_items_mask_contacts_when_asked(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, {**VALID, "words": "appelez le 06 12 34 56 78"})
    assert result.answers["words"] == "appelez le [numéro masqué]"


def test_results_are_frozen(kitchen_sink: Instrument) -> None:
    result = validate_answers(kitchen_sink, VALID)
    with pytest.raises(ValidationError):
        result.errors = ()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        kitchen_sink.item("agree").weight = 3  # type: ignore[misc]

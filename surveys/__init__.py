"""Instrument definitions: the citizen questionnaire and the mystery-shopper grids.

Declarative, validated, versioned definitions (YAML, JSON or XLSForm), their skip logic, answer
validation and item/submission scores. Pure Python: this package never imports the web or
database layers.
"""

from surveys.answers import (
    AnswerError,
    AnswerValidation,
    FormPage,
    form_pages,
    redact_contacts,
    relevant_items,
    validate_answers,
)
from surveys.channels import (
    CHANNELS,
    DEFAULT_CHANNEL_WEIGHTS,
    DEFAULT_TESTS_PER_CHANNEL,
    ChannelCode,
)
from surveys.errors import (
    DefinitionError,
    DefinitionProblem,
    ExpressionError,
    InstrumentError,
    InvalidAnswersError,
    XLSFormError,
)
from surveys.expressions import Expression, evaluate, parse_expression
from surveys.loader import (
    canonical_json,
    default_instruments,
    instrument_from_dict,
    instrument_from_yaml,
    instrument_sha256,
    load_instrument,
)
from surveys.packed import (
    ITEM_SCORE_BYTES,
    pack_item_scores,
    packed_items,
    packed_length,
    unpack_item_scores,
)
from surveys.schema import (
    DONT_KNOW,
    ITEM_TYPES,
    NEVER,
    NOT_APPLICABLE,
    Choice,
    Instrument,
    Item,
    KnockOut,
    LocalizedText,
    Section,
    Theme,
    Thresholds,
)
from surveys.scores import (
    NodeScore,
    SubmissionScores,
    delay_value,
    item_score,
    submission_scores,
)
from surveys.workdays import (
    add_working_days,
    holiday_subdivision,
    is_working_day,
    working_days_between,
)
from surveys.xlsform import XLSFormReading, from_xlsform, read_xlsform, to_xlsform

__all__ = [
    "CHANNELS",
    "DEFAULT_CHANNEL_WEIGHTS",
    "DEFAULT_TESTS_PER_CHANNEL",
    "DONT_KNOW",
    "ITEM_SCORE_BYTES",
    "ITEM_TYPES",
    "NEVER",
    "NOT_APPLICABLE",
    "AnswerError",
    "AnswerValidation",
    "ChannelCode",
    "Choice",
    "DefinitionError",
    "DefinitionProblem",
    "Expression",
    "ExpressionError",
    "FormPage",
    "Instrument",
    "InstrumentError",
    "InvalidAnswersError",
    "Item",
    "KnockOut",
    "LocalizedText",
    "NodeScore",
    "Section",
    "SubmissionScores",
    "Theme",
    "Thresholds",
    "XLSFormError",
    "XLSFormReading",
    "add_working_days",
    "canonical_json",
    "default_instruments",
    "delay_value",
    "evaluate",
    "form_pages",
    "from_xlsform",
    "holiday_subdivision",
    "instrument_from_dict",
    "instrument_from_yaml",
    "instrument_sha256",
    "is_working_day",
    "item_score",
    "load_instrument",
    "pack_item_scores",
    "packed_items",
    "packed_length",
    "parse_expression",
    "read_xlsform",
    "redact_contacts",
    "relevant_items",
    "submission_scores",
    "to_xlsform",
    "unpack_item_scores",
    "validate_answers",
    "working_days_between",
]

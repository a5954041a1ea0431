"""The model: every entity of Duru Notes declared once, and the value rules of each side.

Everything else (device DDL, server DDL, bridge, schema check) is derived from
here. This package imports nothing of duru but ``duru.errors``.
"""

from duru.model.entities import (
    ATTACHMENT,
    BY_NAME,
    BY_TABLE,
    ENTITIES,
    FOLDER,
    NOTE,
    NOTE_FOLDER,
    NOTE_LINK,
    NOTE_TAG,
    REMINDER,
    SAVED_SEARCH,
    TASK,
    TEMPLATE,
    entity,
)
from duru.model.fingerprint import describe, fingerprint
from duru.model.schema import PROPS_COLUMN, Default, Entity, Field, Index, Search
from duru.model.types import (
    NOTE_TYPE,
    RECURRENCE,
    REMINDER_TYPE,
    TASK_PRIORITY,
    TASK_STATUS,
    EnumType,
    Kind,
)
from duru.model.values import (
    Row,
    complete_row,
    default_local,
    encode_changes,
    from_local,
    new_id,
    now_ms,
    to_local,
)

MODEL_FINGERPRINT = fingerprint(ENTITIES)

__all__ = [
    "ATTACHMENT",
    "BY_NAME",
    "BY_TABLE",
    "Default",
    "ENTITIES",
    "Entity",
    "EnumType",
    "FOLDER",
    "Field",
    "Index",
    "Kind",
    "MODEL_FINGERPRINT",
    "NOTE",
    "NOTE_FOLDER",
    "NOTE_LINK",
    "NOTE_TAG",
    "NOTE_TYPE",
    "PROPS_COLUMN",
    "RECURRENCE",
    "REMINDER",
    "REMINDER_TYPE",
    "Row",
    "SAVED_SEARCH",
    "Search",
    "TASK",
    "TASK_PRIORITY",
    "TASK_STATUS",
    "TEMPLATE",
    "complete_row",
    "default_local",
    "describe",
    "encode_changes",
    "entity",
    "fingerprint",
    "from_local",
    "new_id",
    "now_ms",
    "to_local",
]

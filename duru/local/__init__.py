"""The device store: a plaintext SQLite database derived from the model."""

from duru.local.db import Database
from duru.local.schema import SCHEMA_VERSION, device_ddl

__all__ = ["SCHEMA_VERSION", "Database", "device_ddl"]

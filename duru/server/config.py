"""Settings of the sync server (``duru serve``); every one has a ``DURU_*`` variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

from duru.errors import UsageError

OPERATOR_TOKEN_VAR = "DURU_SERVER_OPERATOR_TOKEN"
# The shortest operator token taken: 16 characters of a random token are ~96 bits.
MIN_OPERATOR_TOKEN = 16
# The longest duration a setting may hold: dates past it overflow Python's datetime
# (year 9999) or PostgreSQL's interval, and every login would fail with a 500.
_MAX_SECONDS = 100 * 365 * 24 * 3600
# The housekeeping drops attempt counts older than a day: a login or registration
# window set longer would have counted a day at most, so it is refused.
_MAX = {
    "token_ttl": (_MAX_SECONDS, "100 years"),
    "login_window": (24 * 3600, "a day"),
    "registration_window": (24 * 3600, "a day"),
    "tombstone_days": (100 * 365, "100 years"),
}

# Settings where 0 means "none at all" rather than a limit no request could meet.
_MAY_BE_ZERO = frozenset({"max_registrations_per_address"})


@dataclass(frozen=True)
class ServerConfig:
    """Limits and lifetimes of the sync API. Durations in seconds, sizes in bytes."""

    token_ttl: int = 30 * 24 * 3600
    max_body_bytes: int = 32 * 1024 * 1024
    # An encrypted snapshot of a whole device (PUT /v1/snapshot), streamed to the database.
    max_snapshot_bytes: int = 4 * 1024**3
    max_push_entries: int = 5_000
    max_page: int = 5_000
    default_page: int = 1_000
    login_window: int = 15 * 60
    max_failures_per_account: int = 10
    max_failures_per_address: int = 50
    # Accounts one client address may register (or try to) within the window; 0: the
    # server takes no new accounts (a private server whose accounts are all made).
    registration_window: int = 3600
    max_registrations_per_address: int = 30
    tombstone_days: int = 90
    # Opens /dashboard (Basic password or Bearer); empty: no dashboard. repr=False: no leak in logs.
    operator_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        # /dashboard has no limit on wrong tries (it is not an account): a short token
        # would be guessed.
        if self.operator_token and len(self.operator_token) < MIN_OPERATOR_TOKEN:
            raise UsageError(
                f"{OPERATOR_TOKEN_VAR} must be at least {MIN_OPERATOR_TOKEN} characters "
                "(make one: python3 -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        for f in _limits():
            value = getattr(self, f.name)
            least = 0 if f.name in _MAY_BE_ZERO else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "a whole number, 0 or more" if least == 0 else "a positive integer"
                raise UsageError(f"{f.name} must be {kind}, not {value!r}")
            most, words = _MAX.get(f.name, (value, ""))
            if value > most:
                raise UsageError(f"{f.name} must be at most {most} ({words}), not {value}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Read ``DURU_SERVER_<FIELD>`` variables (``DURU_SERVER_TOKEN_TTL=3600``)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"operator_token": env.get(OPERATOR_TOKEN_VAR, "").strip()}
        for f in _limits():
            var = f"DURU_SERVER_{f.name.upper()}"
            raw = env.get(var, "").strip()
            if raw:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise UsageError(f"{var}={raw!r} is not a whole number") from None
        return cls(**values)


def _limits() -> list[Field[Any]]:
    return [f for f in fields(ServerConfig) if f.name != "operator_token"]

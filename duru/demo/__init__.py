"""`duru demo`: the whole device-store story on a fresh database with realistic notes."""

from duru.demo.context import DemoContext, Shown, Step
from duru.demo.run import ALL_STEPS, DemoResult, StepResult, run_demo
from duru.demo.server_steps import SERVER_STEPS
from duru.demo.steps import STEPS

__all__ = [
    "ALL_STEPS",
    "SERVER_STEPS",
    "STEPS",
    "DemoContext",
    "DemoResult",
    "Shown",
    "Step",
    "StepResult",
    "run_demo",
]

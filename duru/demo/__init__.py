"""`duru demo`: the whole device-store story on a fresh database with realistic notes."""

from duru.demo.context import DemoContext, Shown, Step
from duru.demo.run import DemoResult, StepResult, run_demo
from duru.demo.steps import STEPS

__all__ = ["STEPS", "DemoContext", "DemoResult", "Shown", "Step", "StepResult", "run_demo"]

"""Owns the command group that imports a command's module only when that command runs (or help lists it)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

from safety_monitor.cli.failures import FailingPlainly


class LazyGroup(FailingPlainly):
    """`safety-monitor`'s group: `lazy` maps a command's name to "module:attribute". The web workspace pulls in
    FastAPI and uvicorn, the Kafka commands kafka-python: about 1.1 s of every start-up that `replay`, `deliver`
    or `rules test` would pay for nothing."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        self.add_command(command, cmd_name)
        return command

"""The config file: every option a scheduled run needs, in one TOML file.

Operators put what does not change between nights (ledger path, workers, rate
limit, caps, language, ``live``) in a file given by ``--config`` or
``BATCH_PAYOUTS_CONFIG``; options on the command line still win.  The API key
never goes in this file: it stays in the environment.

Keys are the long option names, with dashes or underscores (``rate-limit`` or
``rate_limit``).  Top-level keys apply to every command that has the option;
a table named after a command (``[run]``, ``[validate]``, ``[status]``)
applies to that command only and wins over the top level.

Commands are loaded lazily (``cli/main.py``), so ``run`` may not have loaded the command a
table belongs to (``[notify]``, ``[status]``): the table is known by the command's name and
its keys are left to that command, which checks them when it runs.  ``run --notify`` reads
the ``[notify]`` table through ``table_for``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from batch_payouts.errors import BatchError
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml

CONFIG_ENV = "BATCH_PAYOUTS_CONFIG"
CONFIG_META = "batch_payouts.cli.config"  # where the parsed file waits in click's context for a command that needs more


# The team's commands take nothing from a config file (users, the policy and approvals live in the
# ledger); a table or key that looks like a policy setting is refused by name, never read silently.
TEAM_TABLES = frozenset({"policy", "approvals", "users", "approval_policy", "four_eyes"})
POLICY_KEYS = frozenset({"every_batch", "above", "rows_over", "two_above", "approval_policy", "policy", "approvals"})


def read_config(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BatchError(TEXT.UNREADABLE, path=str(path), detail=str(exc)) from exc


def _option_names(command: click.Command) -> dict[str, str]:
    """Config spelling -> click parameter name, for one command's options."""
    names: dict[str, str] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name == "config_path":
            continue
        for flag in param.opts:
            if flag.startswith("--"):
                names[flag[2:].replace("-", "_")] = param.name
        names[param.name] = param.name
    return names


def defaults_for(command: click.Command, config: dict[str, Any], path: Path, all_commands: dict[str, click.Command],
                 lazy_names: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The ``default_map`` for ``command``: its options from the file's top level and its own table.

    ``lazy_names``: commands that exist but are not loaded; their tables are accepted unread."""
    known_anywhere: set[str] = set()
    for other in all_commands.values():
        known_anywhere |= set(_option_names(other))
    mine = _option_names(command)
    defaults: dict[str, Any] = {}
    sections = {name: value for name, value in config.items() if isinstance(value, dict)}
    top = {name: value for name, value in config.items() if not isinstance(value, dict)}
    for scope, values in (("", top), *((name, section) for name, section in sections.items())):
        if scope.replace("-", "_").lower() in TEAM_TABLES:
            raise BatchError(TEXT.POLICY_IN_CONFIG, path=str(path), key=f"[{scope}]")
        if scope and scope not in all_commands:
            if scope in lazy_names and scope != command.name:
                continue  # another command's table: that command checks its keys when it runs
            raise BatchError(TEXT.UNKNOWN_KEY, path=str(path), key=scope,
                             known=", ".join(sorted({*all_commands, *lazy_names})))
        for key, value in values.items():
            normal = key.replace("-", "_").lower()
            if scope == "web" and normal == "users" and isinstance(value, dict):
                continue  # sign-in users of `web`: read by that command itself, not an option
            if "key" in normal and ("api" in normal or "conekta" in normal or normal == "key"):
                raise BatchError(TEXT.SECRET_KEY, path=str(path), key=key)
            if normal in POLICY_KEYS:
                raise BatchError(TEXT.POLICY_IN_CONFIG, path=str(path), key=key)
            if normal not in known_anywhere:
                raise BatchError(TEXT.UNKNOWN_KEY, path=str(path), key=key, known=", ".join(sorted(known_anywhere)))
            if scope and scope != command.name:
                continue
            if normal in mine:
                defaults[mine[normal]] = value
    return defaults


def apply_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """Eager callback of ``--config``: turn the file into the command's defaults."""
    if value is None:
        return None
    group = ctx.find_root().command
    commands = dict(getattr(group, "commands", {}))
    lazy = set(getattr(group, "lazy_commands", {})) - set(commands)
    try:
        config = read_config(value)
        defaults = defaults_for(ctx.command, config, value, commands, lazy)
    except BatchError as error:
        raise click.UsageError(error.message("es") + "\n" + error.message("en")) from error
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta[CONFIG_META] = config
    ctx.meta[CONFIG_META + ".path"] = value
    return value


def table_for(ctx: click.Context, command: click.Command) -> dict[str, Any]:
    """``command``'s options as the config file of ``ctx`` sets them (top level and its own table),
    for a command that acts on another's settings (``run --notify`` uses ``notify``'s)."""
    config = ctx.meta.get(CONFIG_META)
    if not config:
        return {}
    root = ctx.find_root()
    commands = {**dict(getattr(root.command, "commands", {})), command.name: command}
    lazy = set(getattr(root.command, "lazy_commands", {})) - set(commands)
    path = ctx.meta.get(CONFIG_META + ".path") or Path("config")
    return defaults_for(command, config, path, commands, lazy)


config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), envvar=CONFIG_ENV,
    is_eager=True, expose_value=False, callback=apply_config,
    help="TOML file with default options (also BATCH_PAYOUTS_CONFIG); the command line wins.",
)

"""`batch-payouts schemas write|check FOLDER`: the published contracts (schemas/), generated from the code.

Registered on the ``batch-payouts`` group by importing this module (``_LAZY_COMMANDS`` in
cli/main.py), so no other command loads the schema builders.  The work is in
``batch_payouts.contracts.publish``; here: the folder, the messages, the exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from batch_payouts.cli.main import lang_option, main
from batch_payouts.i18n import catalogue

TEXT = catalogue(__name__)  # this module's messages, in its folder's messages.toml


def _publish(lang: str):
    """The builders, or a clear message (exit 2) when PyYAML, a maintainer-only dependency, is missing."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        click.echo(TEXT.NO_YAML.format(lang), err=True)
        sys.exit(2)
    from batch_payouts.contracts import publish

    return publish


@main.group()
def schemas() -> None:
    """The JSON Schemas (and the input's pandera YAML) published in schemas/, generated from the code."""


@schemas.command("write")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@lang_option
def schemas_write(folder: Path, lang: str) -> None:
    """Write every contract file into FOLDER (the repository's is schemas/).

    Example: batch-payouts schemas write schemas/
    """
    from batch_payouts.contracts import SCHEMA_VERSION

    written = _publish(lang).write(folder)
    click.echo(TEXT.WRITTEN.format(lang, count=len(written), folder=folder, version=SCHEMA_VERSION))


@schemas.command("check")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@lang_option
def schemas_check(folder: Path, lang: str) -> None:
    """Exit 1 if the files in FOLDER differ from what the code generates (for CI).

    Example: batch-payouts schemas check schemas/
    """
    from batch_payouts.contracts import SCHEMA_VERSION

    publish = _publish(lang)
    names = publish.differences(folder)
    if names:
        click.echo(TEXT.DRIFTED.format(lang, folder=folder, names=", ".join(names), command=publish.REGENERATE), err=True)
        sys.exit(1)
    click.echo(TEXT.UP_TO_DATE.format(lang, folder=folder, version=SCHEMA_VERSION))

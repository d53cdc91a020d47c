"""The `scarab` command line: a thin Typer shell over the scarab library."""

from __future__ import annotations

import typer

app = typer.Typer(help="Build, deploy and run the Scarab image-analysis API.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print scarab's version."""
    from scarab import __version__

    typer.echo(__version__)


def main() -> None:
    app()

"""The `scarab serve` command (registered by scarab.cli)."""

from __future__ import annotations

import typer


def serve_command(
    port: int = typer.Option(3000, help="Port on 127.0.0.1 to serve on."),
) -> None:
    """Run the whole stack locally: emulator, deployed API, web client."""
    typer.echo("scarab serve is not implemented yet", err=True)
    raise typer.Exit(1)

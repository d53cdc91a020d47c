"""`python -m scarab.serve`: the same command as `scarab serve`."""

from __future__ import annotations

import typer

from scarab.serve.command import serve_command


def main() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(serve_command)
    app()


if __name__ == "__main__":
    main()

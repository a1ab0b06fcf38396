"""`attune`: the tutoring app (UI + CMT + database)."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="Attune: an adaptive tutor that reads emotion from face, voice and words.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def run(host: str = typer.Option(None, help="interface to listen on (default: settings.host)"),
        port: int = typer.Option(None, help="port (default: settings.port, 7860)"),
        cmt_url: str = typer.Option(None, help='"local", "embedded" or the CMT service URL')):
    """Start the web app: student view, CMT (local service by default) and SQLite by default."""
    from cmt.settings import Settings
    from tutor.client import make_client
    from tutor.db import init_db
    from ui.app import build_app
    from ui.deps import Deps

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in {"host": host, "port": port, "cmt_url": cmt_url}.items() if v}
    settings = Settings(**overrides)
    typer.echo(f"database: {settings.database_url}")
    db = init_db(settings.database_url)
    typer.echo(f"CMT: {settings.cmt_url} (loading the model...)")
    deps = Deps(settings=settings, db=db, cmt=make_client(settings))
    build_app(deps).queue(default_concurrency_limit=8).launch(
        server_name=settings.host, server_port=settings.port, show_error=False)


@db_app.command("upgrade")
def db_upgrade(url: str = typer.Option(None, help="database URL (default: settings)")):
    """Create or migrate the database schema to the newest revision."""
    from cmt.settings import Settings
    from tutor.db import init_db

    url = url or Settings().database_url
    init_db(url)
    typer.echo(f"database at head: {url}")


if __name__ == "__main__":
    app()

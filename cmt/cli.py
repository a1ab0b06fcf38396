"""`cmt`: the model side of Attune (inference service, training, evaluation, benchmarks)."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="Attune's Cross-Modal Transformer: serve, train, evaluate, benchmark.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Attune's Cross-Modal Transformer: serve, train, evaluate, benchmark."""


@app.command()
def serve(host: str = typer.Option(None, help="interface (default: settings.serve_host, 127.0.0.1)"),
          port: int = typer.Option(None, help="port (default: settings.serve_port, 8100)"),
          checkpoint: str = typer.Option(None, help="model checkpoint (default: shipped)")):
    """Run the CMT inference service alone (POST /v1/analyze, /healthz, /readyz)."""
    import uvicorn

    from cmt.serve import create_app
    from cmt.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in {"serve_host": host, "serve_port": port,
                                   "checkpoint": checkpoint}.items() if v}
    settings = Settings(**overrides)
    if not settings.api_keys and settings.serve_host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("set ATTUNE_API_KEYS to serve beyond localhost", param_hint="--host")
    uvicorn.run(create_app(settings), host=settings.serve_host, port=settings.serve_port)


if __name__ == "__main__":
    app()

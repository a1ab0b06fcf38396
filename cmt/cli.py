"""`cmt`: the model side of Attune (inference service, training, evaluation, benchmarks)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

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
    from cmt.serve.limits import H11WithHeadTimeout
    from cmt.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in {"serve_host": host, "serve_port": port,
                                   "checkpoint": checkpoint}.items() if v}
    settings = Settings(**overrides)
    if not settings.api_keys and settings.serve_host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("set ATTUNE_API_KEYS to serve beyond localhost", param_hint="--host")
    uvicorn.run(create_app(settings), host=settings.serve_host, port=settings.serve_port,
                http=H11WithHeadTimeout)


def checkout_tool(name: str):
    """tools/<name>.py of the clone this package runs from, imported; on an install without the
    clone's tools/ (a wheel), a one-line message and exit code 1."""
    import importlib
    import sys

    root = Path(__file__).resolve().parent.parent
    if not (root / "tools" / f"{name}.py").is_file() or not (root / "tests").is_dir():
        typer.echo(f"this command runs from a clone of the Attune repository (it needs "
                   f"tools/{name}.py and tests/); there is none at {root}", err=True)
        raise typer.Exit(1)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"tools.{name}")


@contextmanager
def input_errors():
    """A missing corpus file or a bad argument ends the command with its message, not a trace;
    so does a file that cannot be written (a full disk, a read-only folder)."""
    try:
        yield
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from e
    except OSError as e:
        typer.echo(f"Error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), err=True)
        raise typer.Exit(1) from e


@app.command()
def train(config: Path = typer.Option(Path("configs/cmt.yaml"), help="training config (YAML)"),
          data_dir: Path = typer.Option(None, help="datasets folder (e.g. ../shared/datasets)"),
          fusion: str = typer.Option(None, help="cross | joint | concat | late (overrides the config)"),
          epochs: int = typer.Option(None, help="overrides the config"),
          out: Path = typer.Option(None, help="checkpoint path (overrides the config)"),
          resume: bool = typer.Option(False, help="go on from the state the last run left after its "
                                      "last finished epoch (same config)"),
          fusion_from: Path = typer.Option(None, help="take the fusion weights from this checkpoint "
                                           "(trained by the same config) and fit only the experts, "
                                           "the stack and reliability"),
          probe_dir: Path = typer.Option(None, help="write the cross-corpus probes' checkpoints "
                                         "here (for cmt evaluate)")):
    """Train the fusion model on cached encoder features; torchrun runs it data-parallel."""
    import json

    from cmt.training.train import load_config, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with input_errors():
        report = run(load_config(config, datasets_dir=data_dir, fusion=fusion, epochs=epochs, out=out,
                                 fusion_from=fusion_from, probe_dir=probe_dir),
                     resume=resume)
    typer.echo(json.dumps(report, indent=2))


@app.command()
def calibrate(checkpoint: Path = typer.Option(Path("cmt/checkpoints/cmt.pt"), help="the trained checkpoint"),
              config: Path = typer.Option(Path("configs/cmt.yaml"), help="the config it was trained by "
                                          "(its reliability: section says what to measure)"),
              data_dir: Path = typer.Option(..., help="datasets folder (e.g. ../shared/datasets)"),
              out: Path = typer.Option(None, help="where to write (default: over the checkpoint)"),
              modality: list[str] = typer.Option(None, help="fit only this modality's (repeatable; "
                                                 "the others keep theirs); default: every one the "
                                                 "config's reliability: section names")):
    """Fit each modality's reliability (distance to its expert's training data) onto a trained
    checkpoint, then that modality's temperature alone on the calibration split; its answers
    keep their top labels, only their confidence changes."""
    import json

    from cmt.training.train import calibrate as run_calibrate
    from cmt.training.train import load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with input_errors():
        cfg = load_config(config, datasets_dir=data_dir)
        if modality:
            unknown = sorted(set(modality) - set(cfg.reliability))
            if unknown:
                raise typer.BadParameter(f"{', '.join(unknown)}: not in {config}'s reliability: "
                                         f"section ({', '.join(sorted(cfg.reliability))})",
                                         param_hint="--modality")
            cfg = cfg.model_copy(update={"reliability": {m: cfg.reliability[m] for m in modality}})
        report = run_calibrate(cfg, checkpoint, out or checkpoint)
    typer.echo(json.dumps(report, indent=2))


@app.command("tune-text")
def tune_text(data_dir: Path = typer.Option(..., help="datasets folder (e.g. ../shared/datasets)"),
              layers: int = typer.Option(None, min=1, help="top encoder layers to tune"),
              epochs: int = typer.Option(None, min=1, help="passes over the fit split"),
              meld_times: int = typer.Option(None, min=1,
                                             help="times MELD's fit split is seen per epoch"),
              out: Path = typer.Option(None, help="default: cmt/checkpoints/text_tuned.pt")):
    """Fine-tune the text encoder's top layers for emotion ("attune-minilm-emotion").

    Options left out keep the shipped recipe (cmt.training.text_tune.TuneConfig's defaults)."""
    from dataclasses import replace

    from cmt.model.encoders.text import TUNED_PATH
    from cmt.training.text_tune import TuneConfig, run

    given = {"layers": layers, "epochs": epochs}
    if meld_times is not None:
        given["oversample"] = (("meld", meld_times),)
    config = replace(TuneConfig(), **{k: v for k, v in given.items() if v is not None})
    with input_errors():
        blob = run(config, data_dir, out or TUNED_PATH, log=typer.echo)
    typer.echo(f"kept epoch {blob['epoch']} (best on the calibration split), "
               f"wrote {out or TUNED_PATH} in {blob['seconds']:.0f} s")


@app.command()
def baselines(config: Path = typer.Option(Path("configs/cmt.yaml"), help="training config (YAML)"),
              data_dir: Path = typer.Option(None, help="datasets folder (e.g. ../shared/datasets)"),
              retrain: bool = typer.Option(False, help="retrain the comparators even when cached "
                                           "(the CMT itself is the config's, from `cmt train`)"),
              as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """The results table: unimodal, late, early concat, joint transformer and the CMT, same data."""
    import json

    from cmt.training.baselines import render, run
    from cmt.training.train import load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with input_errors():
        table = run(load_config(config, datasets_dir=data_dir), retrain=retrain)
    typer.echo(json.dumps(table, indent=2) if as_json else render(table))


@app.command("tune-face")
def tune_face(data_dir: Path = typer.Option(..., help="datasets folder (e.g. ../shared/datasets)"),
              epochs: int = typer.Option(10, help="passes over the fit split"),
              mirror: bool = typer.Option(True, help="read each face with its mirror image"),
              fer2013: bool = typer.Option(False, help="also train on FER2013's training crops "
                                           "(DATA_DIR/fer2013)"),
              device: str = typer.Option("auto", help="cpu, cuda (or cuda:N), or auto: cuda "
                                         "when torch sees one"),
              out: Path = typer.Option(None, help="default: cmt/checkpoints/face_tuned.pt")):
    """Fine-tune EfficientNet-Lite0 on face crops for expression ("attune-face-emotion")."""
    from cmt.model.encoders.face import FACE_TUNED_PATH
    from cmt.training.face_tune import FaceTuneConfig, run
    from cmt.training.corpora import SUBDIR

    with input_errors():
        blob = run(FaceTuneConfig(epochs=epochs, mirror=mirror), data_dir / SUBDIR["facial_expressions"],
                   out or FACE_TUNED_PATH, log=typer.echo,
                   fer2013_dir=data_dir / SUBDIR["fer2013"] if fer2013 else None, device=device)
    typer.echo(f"kept epoch {blob['epoch']} (best on the calibration split), "
               f"wrote {out or FACE_TUNED_PATH} in {blob['seconds']:.0f} s")


@app.command()
def evaluate(dataset: str = typer.Option(..., help="meld, goemotions, facial_expressions, ravdess, emodb, "
                                                   "iemocap, affectnet, fer2013, meld_clips, folder"),
             data_dir: Path = typer.Option(..., help="the corpus folder"),
             split: str = typer.Option("dev", help="train | dev | test | all"),
             checkpoint: Path = typer.Option(None, help="fusion checkpoint (default: shipped)"),
             modality: str = typer.Option(None, help="folder layout only: image or audio"),
             as_json: bool = typer.Option(False, "--json", help="print JSON"),
             plot: Path = typer.Option(None, help="write the confusion matrix and the reliability "
                                       "diagram as a PNG")):
    """Score a checkpoint on a corpus, through the modality it carries."""
    import json

    from cmt.training.evaluate import evaluate as run_eval
    from cmt.training.evaluate import plot_confusion

    if plot:  # before the run, not after it
        try:
            plot.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise typer.BadParameter(f"cannot write {plot}: {e.strerror}", param_hint="--plot") from e
    with input_errors():
        res = run_eval(dataset=dataset, data_dir=data_dir, split=split, checkpoint=checkpoint,
                       modality=modality)
    if as_json:
        typer.echo(json.dumps(res, indent=2))
    else:
        typer.echo(f"{dataset} {split} ({res['modality']}): n={res['n']} accuracy={res['accuracy']:.3f} "
                   f"weighted_f1={res['weighted_f1']:.3f} macro_f1={res['macro_f1']:.3f} "
                   f"cross_entropy={res['cross_entropy']:.3f} ece={res['ece']:.3f}"
                   + (f" mean_reliability={res['mean_reliability']:.3f}" if "mean_reliability" in res else ""))
        for e, c in res["per_class"].items():
            typer.echo(f"  {e:9s} P={c['precision']:.3f} R={c['recall']:.3f} F1={c['f1']:.3f} n={c['support']}")
        if "note" in res:
            typer.echo(f"note: {res['note']}")
    if plot:
        try:
            plot_confusion(res, plot)
        except OSError as e:  # a full disk, say: the scores above are already out
            typer.echo(f"Error: could not write the plot {plot}: {e.strerror or e}", err=True)
            raise typer.Exit(1) from e


@app.command()
def bench(requests: int = typer.Option(20, help="requests per client at 1 client (a quarter at more)"),
          clients: str = typer.Option("1,16", help="concurrency levels, comma-separated"),
          mixes: str = typer.Option("text,face,speech,all", help="modality mixes"),
          speech_clip: Path = typer.Option(None, help="audio clip for the speech mixes"),
          checkpoint: str = typer.Option(None, help="model checkpoint (default: shipped)"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """Drive the real service over loopback: latency and throughput per modality mix, batching
    on vs off, and the ASR path against faster-whisper. Runs from a clone (tools/bench.py)."""
    logging.basicConfig(level=logging.WARNING)
    bench_main = checkout_tool("bench").main
    typer.echo(bench_main(json_out=as_json, mixes=tuple(mixes.split(",")),
                          clients=tuple(int(c) for c in clients.split(",")), requests=requests,
                          checkpoint=checkpoint, speech_clip=speech_clip))


if __name__ == "__main__":
    app()

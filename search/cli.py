"""The `archsweep` command line: a thin layer over the search package's functions."""

import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .config import ConfigError, load_config, parse_overrides
from .corpus import CorpusError

app = typer.Typer(help="Train and sweep spaCy-style NLP architectures built on Thinc.", no_args_is_help=True)
debug_app = typer.Typer(help="Inspect configs and models.", no_args_is_help=True)
app.add_typer(debug_app, name="debug")

OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)


class ProgressTable:
    """One row per evaluation: epoch, step, losses, scores, words/s."""

    def __init__(self) -> None:
        self.header_printed = False

    def __call__(self, row) -> None:
        losses = {f"loss {k}": v for k, v in row.losses.items()}
        cells = {"epoch": row.epoch, "step": row.step, **losses, **row.scores, "score": row.score, "words/s": row.words_per_second}
        if not self.header_printed:
            typer.echo("  ".join(f"{k:>12}" for k in cells))
            self.header_printed = True
        typer.echo("  ".join(f"{_cell(k, v):>12}" for k, v in cells.items()))


def _cell(key: str, value) -> str:
    if isinstance(value, int):
        return str(value)
    if key.startswith("loss") or key == "words/s":
        return f"{value:.0f}"
    return f"{value * 100:.2f}"


@app.command(context_settings=OVERRIDES)
def train(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="Training config (.cfg)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Directory for the filled config, model-best/, model-last/ and scores.json."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to train on (CupyOps); -1 for CPU."),
) -> None:
    """Train the pipeline a config describes. Extra --section.key value pairs override the config."""
    from .training import StopTraining, train as run_training

    _setup_logging()
    try:
        overrides = parse_overrides(ctx.args)
        config = load_config(config_path, overrides)
        result = run_training(config, output, gpu_id=gpu_id, on_evaluation=ProgressTable())
    except (ConfigError, CorpusError, FileNotFoundError, StopTraining) as err:
        _fail(str(err))
    typer.echo(f"stopped: {result.stop_reason}; best score {result.best_score * 100:.2f} at step {result.best_step}")
    if output is not None:
        typer.echo(f"saved {output / 'model-best'}, {output / 'model-last'} and {output / 'scores.json'}")


@app.command()
def evaluate(
    model_dir: Path = typer.Argument(..., help="A saved model (model-best/ or model-last/ of a training run)."),
    corpus: Path = typer.Argument(..., help="CoNLL-U file to score on."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON here."),
) -> None:
    """Re-score a saved model on a corpus."""
    from .evaluate import evaluate as run_evaluate

    _setup_logging()
    try:
        scores = run_evaluate(model_dir, corpus, gpu_id=gpu_id)
    except (CorpusError, FileNotFoundError) as err:
        _fail(str(err))
    for key, value in scores.items():
        typer.echo(f"{key:>20}  {value:.0f}" if key == "words_per_second" else f"{key:>20}  {value * 100:.2f}")
    if output is not None:
        output.write_text(json.dumps(scores, indent=2), encoding="utf8")


@debug_app.command("model", context_settings=OVERRIDES)
def debug_model(ctx: typer.Context, config_path: Path = typer.Argument(..., help="Training config (.cfg).")) -> None:
    """Print each component's layer tree with parameter counts, and the total."""
    from .debug import describe_pipeline

    _setup_logging()
    try:
        config = load_config(config_path, parse_overrides(ctx.args))
        description = describe_pipeline(config)
    except (ConfigError, CorpusError, FileNotFoundError) as err:
        _fail(str(err))
    total = 0
    for name, info in description.items():
        typer.echo(f"== component {name!r} ({info['labels']} labels): {info['params']:,} parameters")
        for line in info["tree"]:
            typer.echo("  " + line)
        total += info["params"]
    typer.echo(f"total: {total:,} parameters")


def main() -> None:
    app()

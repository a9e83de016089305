"""The ``f5serve`` command line."""

from __future__ import annotations

import inspect
import logging
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from f5serve import __version__
from f5serve.core.subtitles import render_subtitles, segment_dicts, subtitle_format
from f5serve.engine.asr import DEFAULT_MODEL as DEFAULT_ASR_MODEL
from f5serve.engine.asr import (
    INSTALL_HINT,
    LazyRecognizer,
    Recognizer,
    missing_ref_text,
    require,
)
from f5serve.engine.audio import encode_audio, format_from_path
from f5serve.engine.options import SynthesisOptions, describe_range, option_fields, option_types
from f5serve.engine.pipeline import Engine, SynthesisResult
from f5serve.engine.pipeline import Progress as SynthesisProgress
from f5serve.engine.pronounce import Lexicon
from f5serve.engine.script import check_script_voices, synthesize_script
from f5serve.errors import F5ServeError, InvalidInput
from f5serve.registry import ModelRegistry, ModelStore, load_catalog

app = typer.Typer(
    name="f5serve",
    help="Self-hosted F5-TTS zero-shot voice cloning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
models_app = typer.Typer(
    help="List, download and remove models (the catalogue plus --models-file).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")
db_app = typer.Typer(
    help="The job and voice database: schema revision and migrations.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(
    help="API keys (tenants): create, list and revoke the keys of the database.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

TextArg = Annotated[str, typer.Argument(help="Text to speak; '-' reads it from standard input.")]
ModelsFileOpt = Annotated[
    Path | None,
    typer.Option("--models-file", help="TOML file of user models (default: $F5SERVE_MODELS_FILE)."),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Model cache (default: $F5SERVE_CACHE_DIR, else the Hugging Face cache).",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"f5serve {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """f5serve command line."""


def synth(
    text: TextArg,
    ref_audio: Annotated[
        Path | None, typer.Option(help="Reference clip of the voice to clone.")
    ] = None,
    ref_text: Annotated[
        str | None,
        typer.Option(
            help="Transcript of the reference clip (left out: heard by speech recognition, "
            "with f5serve[asr])."
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file; format from the extension.")
    ] = Path("out.wav"),
    subtitles: Annotated[
        Path | None,
        typer.Option(help="Also write when each chunk is spoken: a .srt or .vtt file."),
    ] = None,
    script: Annotated[
        bool,
        typer.Option(
            "--script",
            help="The text is a script, '[narrator] ... [alice] ...': each line in the --voice "
            "of that name (text before the first tag: --ref-audio).",
        ),
    ] = False,
    voice: Annotated[
        list[str] | None,
        typer.Option(
            "--voice",
            help="A voice of a --script: NAME=CLIP:TRANSCRIPT (repeat for each speaker).",
        ),
    ] = None,
    pronounce: Annotated[
        list[str] | None,
        typer.Option(
            "--pronounce",
            help="WORD=SPELLING (or /PATTERN/=SPELLING) said instead, before normalisation; "
            "repeatable.",
        ),
    ] = None,
    pronunciations: Annotated[
        Path | None,
        typer.Option(help="JSON file of {word or /pattern/: spelling}, before --pronounce."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model name from `f5serve models list`.")
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(help="ISO 639-1 code of the text, or 'auto' (default) to detect it."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Model weights (.safetensors or .pt); overrides --model/--language."),
    ] = None,
    vocab: Annotated[
        Path | None,
        typer.Option(help="vocab.txt that ships with --checkpoint [default: vocab.txt]."),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="Preset or JSON file of dims for --checkpoint [default: F5TTS_v1_Base]."),
    ] = None,
    vocoder: Annotated[
        Path | None,
        typer.Option(
            help="Vocos folder (config.yaml + pytorch_model.bin) for --checkpoint "
            "[default: vocos-mel-24khz]."
        ),
    ] = None,
    models_file: ModelsFileOpt = None,
    cache_dir: CacheDirOpt = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:N or mps (default: best available).")
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="float32, float16 or bfloat16 (half only on GPU).")
    ] = None,
    asr_model: Annotated[
        str,
        typer.Option(
            envvar="F5SERVE_ASR_MODEL",
            help="Whisper model (Hugging Face repository or local folder) that transcribes "
            "a --ref-audio without --ref-text and runs --quality-check.",
        ),
    ] = DEFAULT_ASR_MODEL,
    **overrides: Any,
) -> None:
    """Synthesise speech in the voice of a reference clip (or a multi-speaker --script) and
    write it to a file."""
    options = SynthesisOptions(**overrides)  # one flag per option: _option_parameters
    options.validate()
    if text == "-":
        text = sys.stdin.read()
    fmt = format_from_path(output)
    subtitle_fmt = None if subtitles is None else subtitle_format(subtitles)
    if not output.parent.is_dir():
        raise InvalidInput(f"output folder does not exist: {output.parent}")
    voices = _cli_voices(ref_audio, ref_text, voice or [], script)
    lexicon = _cli_lexicon(pronunciations, pronounce or [])
    if script:
        check_script_voices(text, voices)
    recognizer = _cli_recognizer(asr_model, device, options, voices)
    if checkpoint is not None:
        if model is not None or language is not None:
            err.print("note: --checkpoint given, so --model/--language are ignored")
        engine = _checkpoint_engine(checkpoint, vocab, arch, vocoder, device, dtype)
    else:
        if vocab is not None or arch is not None or vocoder is not None:
            raise InvalidInput(
                "--vocab, --arch and --vocoder go with --checkpoint; "
                "use --model or --language to pick a model from the registry"
            )
        engine, language = _registry_engine(
            text, model, language, models_file, cache_dir, device, dtype
        )
    with _progress_bar() as bar:
        task = bar.add_task("synthesising", total=None)

        def on_progress(p: SynthesisProgress) -> None:
            bar.update(
                task,
                total=p.chunks * p.steps,
                completed=p.done,
                description=f"{p.chunks} chunk(s)",
            )

        speak = _Speak(options, language, lexicon, on_progress, recognizer)
        result = speak.script(engine, text, voices) if script else speak.one(engine, text, voices)
    output.write_bytes(encode_audio(result.audio, result.sample_rate, fmt))
    if subtitles is not None and subtitle_fmt is not None:
        subtitles.write_text(render_subtitles(segment_dicts(result.segments), subtitle_fmt))
    err.print(
        f"wrote {output} ({result.duration:.2f} s of audio, {len(result.chunks)} chunk(s), "
        f"seed {result.seed}, {result.timings.total:.2f} s)"
    )
    for i, segment in enumerate(result.segments if options.quality_check else [], 1):
        tries = ", ".join(f"seed {a.seed}: cer {a.cer:.2f}" for a in segment.attempts)
        err.print(f"quality check, chunk {i}: {tries}")


@dataclass(frozen=True)
class _Speak:
    """How ``f5serve synth`` calls the engine: one voice, or a script."""

    options: SynthesisOptions
    language: str | None
    lexicon: Lexicon
    progress: Callable[[SynthesisProgress], None]
    recognizer: Recognizer | None

    def one(self, engine: Engine, text: str, voices: dict[str | None, Any]) -> SynthesisResult:
        clip, transcript = voices[None]
        return engine.synthesize(
            text,
            clip,
            transcript,
            options=self.options,
            progress=self.progress,
            language=self.language,
            pronunciations=self.lexicon,
            recognizer=self.recognizer,
        )

    def script(self, engine: Engine, text: str, voices: dict[str | None, Any]) -> SynthesisResult:
        return synthesize_script(
            engine,
            text,
            voices,
            options=self.options,
            language=self.language,
            pronunciations=self.lexicon,
            recognizer=self.recognizer,
        )


def _cli_voices(
    ref_audio: Path | None, ref_text: str | None, specs: list[str], script: bool
) -> dict[str | None, tuple[Path, str]]:
    """The voices of a synthesis: ``None`` is --ref-audio with --ref-text (``""`` when left
    out, to be transcribed), each --voice ``NAME=CLIP:TRANSCRIPT`` its name."""
    if ref_text is not None and ref_audio is None:
        raise InvalidInput("--ref-text is the transcript of --ref-audio: give the clip too")
    if specs and not script:
        raise InvalidInput("--voice names the speakers of a --script; add --script")
    voices: dict[str | None, tuple[Path, str]] = {}
    if ref_audio is not None:
        voices[None] = (ref_audio, ref_text or "")
    elif not script:
        raise InvalidInput("give the voice to clone: --ref-audio (and its --ref-text)")
    for spec in specs:
        name, eq, rest = spec.partition("=")
        clip, colon, transcript = rest.partition(":")
        if not (eq and colon and name.strip() and clip and transcript.strip()):
            raise InvalidInput(f"--voice {spec!r}: write NAME=CLIP:TRANSCRIPT")
        voices[name.strip()] = (Path(clip), transcript)
    return voices


def _cli_recognizer(
    model: str,
    device: str | None,
    options: SynthesisOptions,
    voices: dict[str | None, tuple[Path, str]],
) -> Recognizer | None:
    """The speech recogniser, loaded when the synthesis needs one (a --ref-audio without
    --ref-text, --quality-check); None otherwise."""
    untranscribed = any(not transcript.strip() for _, transcript in voices.values())
    if not (untranscribed or options.quality_check):
        return None
    message = (
        f"--quality-check needs speech recognition: {INSTALL_HINT}"
        if options.quality_check
        else missing_ref_text("--ref-audio", "--ref-text")
    )
    return require(LazyRecognizer(model, device), message)


def _cli_lexicon(path: Path | None, entries: list[str]) -> Lexicon:
    """--pronunciations (a JSON file), then each --pronounce ``WORD=SPELLING``."""
    lexicon = Lexicon.from_file(path) if path is not None else Lexicon()
    pairs = [entry.partition("=") for entry in entries]
    bad = [entry for entry, (_, eq, _) in zip(entries, pairs, strict=True) if not eq]
    if bad:
        raise InvalidInput(f"--pronounce {bad[0]!r}: write WORD=SPELLING")
    return lexicon.then(Lexicon.parse({word: spelling for word, _, spelling in pairs}))


def _checkpoint_engine(
    checkpoint: Path,
    vocab: Path | None,
    arch: str | None,
    vocoder: Path | None,
    device: str | None,
    dtype: str | None,
) -> Engine:
    return Engine.from_files(
        checkpoint,
        vocab or Path("vocab.txt"),
        arch or "F5TTS_v1_Base",
        vocoder or Path("vocos-mel-24khz"),
        device=device,
        dtype=dtype,
    )


def _registry_engine(
    text: str,
    model: str | None,
    language: str | None,
    models_file: Path | None,
    cache_dir: Path | None,
    device: str | None,
    dtype: str | None,
) -> tuple[Engine, str | None]:
    """The engine of the model for ``text`` and the text's language (detected for 'auto')."""
    registry = ModelRegistry.from_environment(
        models_file, cache_dir, progress="bar", device=device, dtype=dtype
    )
    name = registry.route(text, language or "auto", model)
    err.print(f"model {name}")
    if language in (None, "auto"):
        language = registry.detect_language(text).language
    return registry.engine(name), language


@models_app.command("list")
def models_list(models_file: ModelsFileOpt = None, cache_dir: CacheDirOpt = None) -> None:
    """Show every model: languages, size on disk, cached?, licence."""
    catalog = load_catalog(models_file)
    store = ModelStore(cache_dir, progress="none")
    table = Table(title=f"models (cache: {store.cache_dir})")
    for column in ("name", "languages", "arch", "size", "cached", "loaded", "licence", "source"):
        table.add_column(column)
    for spec in catalog.models:
        size = store.cached_bytes(spec)
        arch = spec.arch if isinstance(spec.arch, str) else "custom"
        table.add_row(
            spec.name + (" (default)" if spec.name == catalog.default_name else ""),
            ",".join(spec.languages),
            arch,
            "?" if size is None else _human(size),
            "no" if size is None else "yes",
            "no",
            spec.licence or "?",
            str(spec.checkpoint),
        )
    out = Console(width=None if sys.stdout.isatty() else 200)
    out.print(table)
    out.print(
        "size: checkpoint + vocab on disk (? = not downloaded); loaded: in this process "
        "(the command line loads none; a server reports its own)."
    )


@models_app.command("pull")
def models_pull(
    names: Annotated[list[str], typer.Argument(help="Model names (see `f5serve models list`).")],
    models_file: ModelsFileOpt = None,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Download models into the cache (and re-check the hashes of what is already there)."""
    catalog = load_catalog(models_file)
    store = ModelStore(cache_dir, progress="bar")
    specs = [catalog.get(name) for name in names]  # unknown names fail before any download
    failed = 0
    for spec in specs:
        try:
            files = store.fetch(spec, full_check=True)
        except F5ServeError as exc:
            print(f"error: {' '.join(exc.message.split())}", file=sys.stderr)
            failed += 1
            continue
        size = files.checkpoint.stat().st_size + files.vocab.stat().st_size
        err.print(f"pulled {spec.name} ({_human(size)}): {files.checkpoint}")
    if failed:
        raise typer.Exit(1)


@models_app.command("rm")
def models_rm(
    name: Annotated[str, typer.Argument(help="Model name.")],
    models_file: ModelsFileOpt = None,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Delete a model's files from the cache (files other models share are kept)."""
    catalog = load_catalog(models_file)
    spec = catalog.get(name)
    store = ModelStore(cache_dir, progress="none")
    others = [m for m in catalog.models if m.name != name]
    freed = store.remove(spec, keep=others)
    if freed:
        err.print(f"removed {name} ({_human(freed)} freed)")
    else:
        err.print(f"{name} has nothing in the cache {store.cache_dir}")


DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="Database (default: $F5SERVE_DATABASE_URL, as `serve` uses)."
    ),
]
EnvFileOpt = Annotated[
    Path, typer.Option("--env-file", help="Settings file to read (default: ./.env).")
]


def _database_url(database_url: str | None, env_file: Path) -> str:
    from f5serve.core.settings import Settings

    if database_url is not None:
        return database_url
    return Settings(_env_file=env_file).database_url  # type: ignore[call-arg]


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrlOpt = None, env_file: EnvFileOpt = Path(".env")) -> None:
    """Migrate the database schema to the revision this version needs."""
    from f5serve.core.db import upgrade_database

    before, after = upgrade_database(_database_url(database_url, env_file))
    if before == after:
        err.print(f"the database schema is at {after}, as this version needs")
    else:
        err.print(f"upgraded the database schema from {before or 'empty'} to {after}")


@db_app.command("current")
def db_current(database_url: DatabaseUrlOpt = None, env_file: EnvFileOpt = Path(".env")) -> None:
    """Print the database's schema revision (and whether it needs `f5serve db upgrade`)."""
    from f5serve.core import migrations
    from f5serve.core.db import database_revision

    revision = database_revision(_database_url(database_url, env_file))
    note = "head" if revision == migrations.head() else f"needs upgrade to {migrations.head()}"
    typer.echo(f"{revision or 'empty'} ({note})")


def _tenancy(database_url: str | None, env_file: Path) -> Any:
    from f5serve.core.db import open_database
    from f5serve.core.settings import Settings
    from f5serve.core.tenants import Tenancy

    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    url = database_url if database_url is not None else settings.database_url
    return Tenancy(open_database(url, settings.database_timeout), settings.api_key_set)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="The key sees and may change everything.")
    ] = False,
    rpm: Annotated[
        int | None,
        typer.Option("--rpm", help="Requests per minute (default: the server's limit)."),
    ] = None,
    audio_seconds_per_day: Annotated[
        float | None,
        typer.Option(
            "--audio-seconds-per-day",
            help="Seconds of audio per UTC day (default: the server's limit).",
        ),
    ] = None,
    database_url: DatabaseUrlOpt = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    """Make a key and print it once (only its hash is stored: it cannot be shown again)."""
    row, key = _tenancy(database_url, env_file).create(name, admin, rpm, audio_seconds_per_day)
    typer.echo(key)
    kind = "admin key" if row.admin else "key"
    typer.echo(f"created {kind} {row.id} ({row.name}); it is not shown again", err=True)


@keys_app.command("list")
def keys_list(database_url: DatabaseUrlOpt = None, env_file: EnvFileOpt = Path(".env")) -> None:
    """Show the keys of the database (never the keys themselves)."""
    tenancy = _tenancy(database_url, env_file)
    table = Table(title="API keys")
    for column in ("id", "name", "prefix", "admin", "limits", "created", "revoked"):
        table.add_column(column)
    for row in tenancy.stored_keys():
        rpm = "default" if row.requests_per_minute is None else f"{row.requests_per_minute}"
        audio = row.audio_seconds_per_day
        table.add_row(
            row.id,
            row.name,
            row.prefix + "…",
            "yes" if row.admin else "no",
            f"{rpm} req/min, {'default' if audio is None else f'{audio:g}'} s/day",
            f"{row.created_at:%Y-%m-%d %H:%M}",
            "-" if row.revoked_at is None else f"{row.revoked_at:%Y-%m-%d %H:%M}",
        )
    out = Console(width=None if sys.stdout.isatty() else 200)
    out.print(table)
    env = len(tenancy.env_tenants)
    if env:
        out.print(f"and {env} admin key(s) from F5SERVE_API_KEYS")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `f5serve keys list`).")],
    database_url: DatabaseUrlOpt = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    """Refuse a key from now on, in every process of the deployment."""
    row, was_active = _tenancy(database_url, env_file).revoke(key_id)
    message = f"revoked {row.id} ({row.name})" if was_active else f"{row.id} was already revoked"
    typer.echo(message, err=True)


def serve(**options: Any) -> None:
    """Start the HTTP server (API, job worker, storage) in this process.

    Every option is also an environment variable F5SERVE_<NAME> (and may sit in a .env file);
    a flag wins over the environment. On PostgreSQL, --no-worker makes a stateless API
    replica: it takes jobs and forwards sync requests to the workers (`f5serve worker`).
    """
    _run_server(_settings(options))


def worker(**options: Any) -> None:
    """Start a worker (PostgreSQL): it runs the jobs of the queues of --models, --concurrency
    at once (they batch on the device), and answers the sync requests API replicas forward.

    Run one per GPU. Every `serve` option applies too (--device cuda:1, --port ...).
    """
    from f5serve.core.db import database_url
    from f5serve.errors import ConfigError

    models, concurrency = options.pop("models"), options.pop("concurrency")
    if models is not None:
        options["worker_models"] = models
    if concurrency is not None:
        options["job_workers"] = concurrency
    settings = _settings(options | {"run_worker": True})
    if database_url(settings.database_url).get_backend_name() == "sqlite":
        raise ConfigError(
            "f5serve worker shares jobs through PostgreSQL: set F5SERVE_DATABASE_URL="
            "postgresql://... (with SQLite, `f5serve serve` runs the jobs itself)"
        )
    _run_server(settings)


def _settings(options: dict[str, Any]) -> Any:
    from f5serve.core.settings import Settings

    env_file = options.pop("env_file")
    given = {k: v for k, v in options.items() if v is not None}
    return Settings(_env_file=env_file, **given)  # type: ignore[call-arg]


def _run_server(settings: Any) -> None:
    from f5serve.http.app import serve

    level = settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(settings)


FLAG_NAMES = {"run_worker": "worker"}
"""Settings whose flag goes by a shorter name (``--no-worker``); the setting's own name stays an
accepted alias (``--no-run-worker``)."""


def _serve_parameters(exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One flag per :class:`Settings` field (but ``exclude``), so ``f5serve serve --help`` lists
    them all."""
    from f5serve.core.settings import Settings

    params = []
    for name, field in Settings.model_fields.items():
        if name in exclude:
            continue
        words = [w.replace("_", "-") for w in dict.fromkeys([FLAG_NAMES.get(name, name), name])]
        kind = next(
            (t for t in (bool, int, float, Path, str) if t in _types(field.annotation)), str
        )
        flags = [f"--{w}/--no-{w}" if kind is bool else f"--{w}" for w in words]
        default = field.default if field.default not in (None, "") else "none"
        help_text = f"{field.description} (env F5SERVE_{name.upper()}, default {default})"
        option = typer.Option(*flags, help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[Optional[kind], option],  # noqa: UP045 - typer needs it
            )
        )
    params.append(
        inspect.Parameter(
            "env_file", inspect.Parameter.KEYWORD_ONLY, default=Path(".env"), annotation=EnvFileOpt
        )
    )
    return params


def _option_parameters() -> list[inspect.Parameter]:
    """One flag per synthesis option, with its default, range and help from the options type."""
    params = []
    types = option_types()
    for f in option_fields():
        flag = "--" + f.name.replace("_", "-")
        kind = next(t for t in (bool, int, float, str) if t in _types(types[f.name]))
        flags = [f"{flag}/--no-{f.name.replace('_', '-')}"] if kind is bool else [flag]
        help_text = f.metadata["help"]
        if f.metadata["bounds"]:
            help_text = f"{help_text.rstrip('.')}; {describe_range(f)}."
        option = typer.Option(*flags, help=help_text)
        nullable = type(None) in _types(types[f.name])
        annotation = Optional[kind] if nullable else kind  # noqa: UP045 - typer needs it
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=f.default,
                annotation=Annotated[annotation, option],
            )
        )
    return params


def _types(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) or (annotation,)


WORKER_PARAMETERS = [
    inspect.Parameter(
        "models",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Optional[str],  # noqa: UP045 - typer needs it
            typer.Option(
                "--models",
                help="Comma-separated models whose jobs this worker runs "
                "(same as --worker-models; default: every model).",
            ),
        ],
    ),
    inspect.Parameter(
        "concurrency",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Optional[int],  # noqa: UP045 - typer needs it
            typer.Option("--concurrency", min=1, help="Jobs run at once (same as --job-workers)."),
        ],
    ),
]


def _register(command: Callable[..., None], name: str, params: list[inspect.Parameter]) -> None:
    """Register ``command`` under ``name`` with ``params`` as its (keyword) flags."""
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    app.command(name)(command)


def _synth_parameters() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(synth, include_extras=True)
    own = [
        p.replace(annotation=hints[p.name])
        for p in inspect.signature(synth).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    return [*own, *_option_parameters()]


_register(synth, "synth", _synth_parameters())
_register(serve, "serve", _serve_parameters())
# a worker always runs jobs: it has no --no-worker
_register(worker, "worker", [*WORKER_PARAMETERS, *_serve_parameters(exclude=("run_worker",))])


def _human(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def main() -> None:
    """Entry point: run the app; turn our errors into one line on stderr and exit code 1."""
    try:
        app()
    except F5ServeError as exc:
        print(f"error: {' '.join(exc.message.split())}", file=sys.stderr)
        sys.exit(1)

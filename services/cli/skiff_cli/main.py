"""`skiff`: the command line for trips, batch extraction and the local stack."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from skiff_cli import champions, routes, stack
from skiff_cli.batch import (
    BatchSettings,
    DomainChoice,
    ModelChoice,
    Tiers,
    extract_local,
    extract_over_nats,
    local_resolver,
    run_extract,
)
from skiff_cli.calibrate import calibrate as run_calibration
from skiff_cli.calibrate import card_calibration, registry_card, set_threshold
from skiff_cli.calibrate import table as calibration_table
from skiff_cli.client import SkiffClient, StackUnreachable, SubmitError, probe
from skiff_cli.flywheel_cli import flywheel_app
from skiff_cli.registry_cli import RegistryRefused, RegistryUnavailable, registry_app
from skiff_cli.render import print_event
from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.events import TripFinished, TripNeedsInput
from skiff_contracts.messages import TripRequest
from skiff_extraction.router import load_router
from skiff_inference.factory import EngineSettings
from skiff_runtime.telemetry import configure_tracing

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
streams_app = typer.Typer(no_args_is_help=True, help="JetStream streams, consumers and buckets.")
app.add_typer(streams_app, name="streams")
app.add_typer(registry_app, name="registry")
app.add_typer(flywheel_app, name="flywheel")
models_app = typer.Typer(no_args_is_help=True, help="The fine-tuned adapters this release ships.")
models_app.command("install")(champions.install_command)
app.add_typer(models_app, name="models")
console = Console(stderr=False)
errors = Console(stderr=True)
STILL_RUNNING = 3  # `skiff trip`'s exit status when --timeout passes before the trip ends
NO_STACK = 4  # the exit status of a command that found no stack to talk to
T = TypeVar("T")

DEMO_TRIP = (
    "Fly me from Boston to Denver on 12 March, back on the 16th, 2 adults. "
    "Book a hotel in Denver for those nights, rent a compact car at the Denver airport "
    "on the 12th, and add basic travel insurance for both of us."
)

NatsUrl = Annotated[
    str | None,
    typer.Option(help="NATS URL (default: $SKIFF_NATS_URL, the local stack, or localhost)"),
]
Home = Annotated[Path, typer.Option(help="where the local stack keeps its state")]


def run_client(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` for a command that talks to the stack: when none answers, one line that
    says so and exit status 4, not a traceback (nor a connection retrying forever)."""
    try:
        return asyncio.run(work)
    except StackUnreachable as error:
        errors.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(NO_STACK) from error


async def follow_trip(
    url: str, request: TripRequest, as_json: bool, timeout_s: float, home: Path | None = None
) -> int:
    """Submit, then print every event until the trip finishes; the trip's trace starts here
    (exported when `OTEL_EXPORTER_OTLP_ENDPOINT` is set). As the `cli` client of the stack
    in `home` (its password is there)."""
    provider = configure_tracing("skiff-cli")
    try:
        return await _follow_trip(url, request, as_json, timeout_s, home)
    finally:
        provider.shutdown()


async def _follow_trip(
    url: str, request: TripRequest, as_json: bool, timeout_s: float, home: Path | None
) -> int:
    async with await SkiffClient.connect(url, home=home) as client:
        try:
            accepted = await client.submit(request)
        except SubmitError as error:
            if as_json:
                print(error.rejected.model_dump_json())
            else:
                console.print(f"[red]rejected:[/] {error}")
            return 2
        finished: TripFinished | None = None
        try:
            async for event in client.events(accepted.trip_id, timeout_s=timeout_s):
                if as_json:
                    print(event.model_dump_json(), flush=True)
                else:
                    print_event(console, event)
                if isinstance(event, TripNeedsInput) and not as_json:
                    await ask_user(client, accepted.trip_id)
                if isinstance(event, TripFinished):
                    finished = event
        except TimeoutError:
            errors.print(
                f"[yellow]still running:[/] {accepted.trip_id} did not finish within "
                f"{timeout_s:g} s; the trip goes on: skiff status {accepted.trip_id}"
            )
            return STILL_RUNNING
        return 0 if finished is not None and finished.state == "completed" else 1


async def ask_user(client: SkiffClient, trip_id: str) -> None:
    """On a terminal, answer inline; otherwise say how to answer from elsewhere."""
    if not sys.stdin.isatty():
        console.print(f'answer with: skiff answer {trip_id} "…"')
        return
    text = (await asyncio.to_thread(input, "your answer> ")).strip()
    if text:
        await client.answer(trip_id, text)


@app.command()
def trip(
    text: Annotated[str, typer.Argument(help="the request, in the traveller's words")],
    reference_date: Annotated[
        str | None, typer.Option(help="'today' for relative dates, YYYY-MM-DD")
    ] = None,
    client_request_id: Annotated[
        str | None, typer.Option(help="idempotency key; retries with it are one trip")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON event per line")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the trip to finish")] = 600.0,
    nats_url: NatsUrl = None,
) -> None:
    """Submit a trip request, show each step as it happens, print the itinerary.

    Exit status: 0 booked, 1 finished otherwise, 2 rejected, 3 still running at --timeout,
    4 no stack reachable.
    """
    fields: dict[str, object] = {"text": text}
    if reference_date:
        fields["reference_date"] = date.fromisoformat(reference_date)
    if client_request_id:
        fields["client_request_id"] = client_request_id
    request = TripRequest.model_validate(fields)
    code = run_client(follow_trip(stack.resolve_nats_url(nats_url), request, as_json, timeout))
    raise typer.Exit(code)


@app.command()
def status(
    trip_id: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Show a trip's saga record."""

    async def load() -> str | None:
        async with await SkiffClient.connect(stack.resolve_nats_url(nats_url)) as client:
            record = await client.saga(trip_id)
            return record.model_dump_json(indent=None if as_json else 2) if record else None

    shown = run_client(load())
    if shown is None:
        console.print(f"[red]no such trip:[/] {trip_id}")
        raise typer.Exit(1)
    print(shown)


@app.command()
def answer(trip_id: str, text: str, nats_url: NatsUrl = None) -> None:
    """Answer a trip's question (it resumes from where it asked)."""

    async def send() -> None:
        async with await SkiffClient.connect(stack.resolve_nats_url(nats_url)) as client:
            await client.answer(trip_id, text)

    run_client(send())
    console.print(f"answered {trip_id}")


@app.command()
def cancel(trip_id: str, nats_url: NatsUrl = None) -> None:
    """Cancel a trip: every hold is released (refused once confirmation has begun)."""

    async def send() -> None:
        async with await SkiffClient.connect(stack.resolve_nats_url(nats_url)) as client:
            await client.cancel(trip_id)

    run_client(send())
    console.print(f"cancellation sent for {trip_id}; follow it with: skiff status {trip_id}")


@app.command()
def extract(
    domain: Annotated[str, typer.Option(help="flights, hotels, cars, insurance or auto")],
    input: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("--output", dir_okay=False)],
    reference_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
    local: Annotated[
        bool, typer.Option("--local", help="run the worker logic in-process, no NATS")
    ] = False,
    tiers: Annotated[
        str, typer.Option(help="slm, or slm+llm: what the SLM escalates goes to the LLM tier")
    ] = "slm",
    threads: Annotated[int, typer.Option(help="engine threads for --local and the router")] = 2,
    model: Annotated[
        str, typer.Option(help="champion (the shipped adapters) or base (for comparison)")
    ] = "champion",
    confidence_threshold: Annotated[
        float | None,
        typer.Option(help="--local: the SLM's threshold (default: each model card's)"),
    ] = None,
    nats_url: NatsUrl = None,
) -> None:
    """Batch extraction: one JSONL line per input line and domain."""
    if model not in ("champion", "base"):
        raise typer.BadParameter(f"unknown model {model!r}: champion or base", param_hint="--model")
    chosen_model: ModelChoice = model  # type: ignore[assignment]
    if domain not in ("flights", "hotels", "cars", "insurance", "auto"):
        raise typer.BadParameter(f"unknown domain {domain!r}", param_hint="--domain")
    if tiers not in ("slm", "slm+llm"):
        raise typer.BadParameter(f"unknown tiers {tiers!r}: slm or slm+llm", param_hint="--tiers")
    chosen: DomainChoice = domain  # type: ignore[assignment]
    chosen_tiers: Tiers = tiers  # type: ignore[assignment]
    ref = date.fromisoformat(reference_date) if reference_date else date.today()
    engine = EngineSettings(threads=threads)
    settings = BatchSettings()
    if not local:
        url = stack.resolve_nats_url(nats_url)
        run_client(probe(url))  # fails at once when no stack listens, rather than retrying
        rows = extract_over_nats(
            input, chosen, ref, url, engine, tiers=chosen_tiers, model=chosen_model
        )
        try:
            counts = run_extract(rows, output)
        except RegistryUnavailable as error:
            errors.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from error
    elif chosen_tiers == "slm" or (settings.llm is not None and settings.llm.url):
        llm = chosen_tiers == "slm+llm"
        rows = local_rows(
            input, chosen, ref, engine, settings, None, llm, confidence_threshold, chosen_model
        )
        counts = run_extract(rows, output)
    else:
        console.print("no SKIFF_LLM__URL: starting the stand-in LLM server for this run")
        with stack.standin_llm(threads=threads) as standin:
            rows = local_rows(
                input, chosen, ref, engine, settings, standin, True, confidence_threshold,
                chosen_model,
            )  # fmt: skip
            counts = run_extract(rows, output)
    console.print(json.dumps(counts), style="bold", highlight=False)


def local_rows(
    input: Path,
    domain: DomainChoice,
    ref: date,
    engine: EngineSettings,
    settings: BatchSettings,
    standin_url: str | None,
    llm: bool,
    threshold: float | None,
    model: ModelChoice,
) -> AsyncIterator[dict[str, Any]]:
    """`--local` rows; with the LLM tier (`llm`) on the stand-in at `standin_url`, or the one
    the settings name. `threshold` applies to every domain; None: each model card's."""
    resolver = local_resolver(settings, standin_url) if llm else None
    return extract_local(
        input, domain, ref, engine, model=model, resolver=resolver, prices=settings.prices,
        threshold=threshold,
    )  # fmt: skip


@app.command()
def route(
    text: Annotated[str | None, typer.Option("--text", help="one request")] = None,
    input: Annotated[
        Path | None, typer.Option("--input", exists=True, dir_okay=False, help="JSONL: id, text")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", dir_okay=False, help="JSONL (default: stdout)")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="a router file (default: the one shipped with Skiff)")
    ] = None,
    llm: Annotated[
        bool, typer.Option("--llm", help="ask the running stack's LLM tier when unsure")
    ] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Route requests: which domains each asks for, what no micro-SLM covers, and who said so."""
    if (text is None) == (input is None):
        raise typer.BadParameter("give --text or --input, not both", param_hint="--text")
    router = load_router(model)
    lines = [json.dumps({"id": "text", "text": text})] if text is not None else None
    source = lines if lines is not None else input.open()  # type: ignore[union-attr]

    async def run() -> list[dict[str, Any]]:
        url = stack.resolve_nats_url(nats_url)
        if llm:
            await probe(url)  # fails at once when no stack listens, rather than retrying
        connection = await stack.connect(url, identity=stack.OPERATOR) if llm else None
        decide = routes.asking(connection) if connection is not None else None
        out = []
        try:
            for row_id, row_text, error in routes.input_rows(source):
                if row_text is None:
                    out.append({"id": row_id, "error": error})
                    continue
                out.append(routes.line_of(
                    row_id, await routes.route_one(router, row_id, row_text, decide)
                ))  # fmt: skip
        finally:
            if connection is not None:
                await connection.close()
        return out

    rows = run_client(run())
    text_out = "".join(json.dumps(row) + "\n" for row in rows)
    if output is None:
        sys.stdout.write(text_out)
    else:
        output.write_text(text_out)
        console.print(f"{len(rows)} routes → {output}")


@app.command()
def calibrate(
    domain: Annotated[str, typer.Option(help="flights, hotels, cars or insurance")],
    input: Annotated[
        Path, typer.Option("--input", exists=True, dir_okay=False, help="SGD format (gold_norm)")
    ],
    model: Annotated[
        str | None, typer.Option(help="the version to calibrate (default: the task's champion)")
    ] = None,
    reference_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD for records without their own (default today)")
    ] = None,
    target_accuracy: Annotated[float, typer.Option(help="kept slot accuracy to reach")] = 0.97,
    limit: Annotated[int | None, typer.Option(help="use at most this many records")] = None,
    threads: Annotated[int, typer.Option(help="engine threads")] = 2,
    dry_run: Annotated[bool, typer.Option(help="show the sweep, change no card")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Choose a model version's confidence threshold on labelled data; set it on its card."""
    if domain not in DOMAINS:
        raise typer.BadParameter(f"unknown domain {domain!r}", param_hint="--domain")
    chosen: Domain = domain
    ref = date.fromisoformat(reference_date) if reference_date else date.today()
    url = stack.resolve_nats_url(nats_url)
    try:
        card = asyncio.run(registry_card(url, f"{chosen}.extract", model))
    except RegistryUnavailable as error:
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    if card is None:
        errors.print(f"[red]no model {model or 'champion'} for {chosen}.extract[/red]")
        raise typer.Exit(1)
    engine = EngineSettings(threads=threads)
    calibration = asyncio.run(
        run_calibration(input, chosen, ref, engine, card, target_accuracy, limit)
    )
    evidence = card_calibration(calibration, input)
    if not dry_run:
        try:
            asyncio.run(set_threshold(url, card.model_id, evidence))
        except (RegistryUnavailable, RegistryRefused) as error:
            errors.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from error
    if as_json:
        print(json.dumps({**calibration.report(), "set_on_card": not dry_run}))
        return
    print(calibration_table(calibration))
    threshold = "none" if evidence.threshold is None else f"{evidence.threshold:.2f}"
    if dry_run:
        console.print(f"would set threshold {threshold} on {card.model_id} (dry run)")
    else:
        console.print(f"threshold {threshold} set on {card.model_id}")
    if evidence.threshold is None:
        console.print(
            f"[yellow]no threshold reaches {target_accuracy:.2f}: the version runs without "
            "one. Lower --target-accuracy or improve the model.[/yellow]"
        )


@app.command()
def up(
    home: Home = stack.DEFAULT_HOME,
    threads: Annotated[int, typer.Option(help="engine threads per worker")] = 1,
    shipped: Annotated[
        bool, typer.Option(help="the shipped adapters as champions (--no-shipped: base models)")
    ] = True,
) -> None:
    """Start NATS and every service locally under a supervisor that restarts whatever dies
    (state in --home). A running stack is kept: this waits until it is ready."""
    already = stack.running(home) is not None
    try:
        running = stack.up(home, threads=threads, shipped=shipped)
    except (RuntimeError, TimeoutError) as error:
        errors.print(f"[red]stack not ready:[/] {error}")
        errors.print(f"see `skiff stack --home {home}` and the logs in {home}/")
        raise typer.Exit(1) from error
    said = "stack already running" if already else "stack up"
    console.print(f"{said}: {running.nats_url} (logs in {home}/)")


@app.command()
def down(home: Home = stack.DEFAULT_HOME) -> None:
    """Stop everything `skiff up` started: its supervisor, the services, NATS."""
    console.print("stack down" if stack.down(home) else "no stack running")


@app.command("stack")
def show_stack(home: Home = stack.DEFAULT_HOME) -> None:
    """The local stack's processes: pid, whether it runs, restarts by the supervisor, last exit.
    Exit status 1 when no stack is recorded or its supervisor is not running."""
    recorded = stack.Stack.load(home)
    if recorded is None:
        console.print("no stack running")
        raise typer.Exit(1)
    table = Table("process", "pid", "state", "restarts", "last exit")
    rows = [
        ("supervisor", recorded.supervisor_pid, None, ""),
        ("nats-server", recorded.nats_pid, recorded.nats_restarts, recorded.nats_last_exit),
        *((s.name, s.pid, s.restarts, s.last_exit) for s in recorded.services),
    ]
    for name, pid, restarts, last_exit in rows:
        state = "[green]up[/]" if stack.alive(pid) else "[red]down[/]"
        shown = "" if restarts is None else str(restarts)
        table.add_row(name, str(pid or "-"), state, shown, last_exit)
    console.print(f"stack at {recorded.nats_url} (state and logs in {home}/)")
    console.print(table)
    if not stack.alive(recorded.supervisor_pid):
        console.print("[red]its supervisor is not running:[/] `skiff up` starts it again")
        raise typer.Exit(1)


@streams_app.command("apply")
def streams_apply(
    nats_url: NatsUrl = None,
    replicas: Annotated[
        int, typer.Option(min=1, max=5, help="copies of each stream and bucket: the cluster's size")
    ] = 1,
) -> None:
    """Create or update every stream, consumer and KV bucket (idempotent), as `admin`."""
    url = stack.resolve_nats_url(nats_url)
    run_client(probe(url))  # fails at once when no stack listens, rather than retrying
    for line in asyncio.run(stack.provision(url, replicas=replicas)):
        console.print(line)


@app.command()
def demo(
    text: Annotated[str, typer.Option(help="the demo request")] = DEMO_TRIP,
    threads: Annotated[int, typer.Option(help="engine threads per worker")] = 1,
) -> None:
    """Start a throw-away local stack, run one four-domain trip end to end, stop the stack."""
    with tempfile.TemporaryDirectory(prefix="skiff-demo-") as tmp:
        home = Path(tmp)
        console.print("[bold]starting NATS, the planner and four workers…[/]")
        running = stack.up(home, threads=threads)
        try:
            console.print(f"[bold]trip:[/] {text}")
            request = TripRequest(text=text)
            code = asyncio.run(follow_trip(running.nats_url, request, False, 600.0, home))
        finally:
            stack.down(home)
    sys.exit(code)


if __name__ == "__main__":
    app()

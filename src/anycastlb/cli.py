"""The one ``anycastlb`` command, with a sub-command per part of the system."""

import resource
import shutil
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from anycastlb import __version__
from anycastlb.control.cli import (
    audit,
    clusters,
    ips,
    lb,
    pools,
    pops,
    tenants,
    usage,
)  # light: httpx and rich load per command
from anycastlb.control.limits import LIMIT_OPTIONS, Limits
from anycastlb.logs import LOG_FORMAT_VARIABLE, LogFormat, setup_logging
from anycastlb.model.config import ConfigError, load_config

# add_completion: typer's --install-completion / --show-completion (bash, zsh, fish, PowerShell);
# the README's "Shell completion" line says how to use them.
app = typer.Typer(
    help="anycastlb: anycast L4 load balancer for Kubernetes ingress.",
    no_args_is_help=True,
    add_completion=True,
)


def _version_line() -> str:
    """What ``--version`` and ``version`` print: the program's name too, as other tools do."""
    return f"anycastlb {__version__}"


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(_version_line())
        raise typer.Exit


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,  # before any sub-command is looked for: `anycastlb --version` alone works
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """anycastlb: anycast L4 load balancer for Kubernetes ingress."""


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        envvar=LOG_FORMAT_VARIABLE,
        help="text: event key=value lines. json: one JSON object per line, same fields "
        "(docs/operations.md, Logs). Processes this one starts log the same way.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="edge.yaml (standalone), or base.yaml with --control (optional)."),
]


def _raise_file_limit() -> None:
    """A proxy holds two sockets (and briefly two pipes) per connection: use every fd we may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = max(hard, int(Path("/proc/sys/fs/nr_open").read_text()))
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))  # root may raise the hard limit
    except (OSError, ValueError):
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def edge(
    config: ConfigOption = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control", help="Follow the control plane at this URL (http:// or https://host:port)."
        ),
    ] = None,
    pop: Annotated[str | None, typer.Option("--pop", help="With --control: this PoP's name.")] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="ANYCASTLB_POP_TOKEN",
            show_default=False,
            help="With --control: the PoP's API token. Prefer the environment variable "
            "ANYCASTLB_POP_TOKEN: a command line is visible to every user (ps).",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="With --control: where the last-known-good state is kept "
            "(default /var/lib/anycastlb/edge-POP).",
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Validate the config and exit.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Run a PoP's data plane from a config file (standalone), or following the control plane (--control)."""
    setup_logging(log_level, log_format)
    if control is not None:
        raise typer.Exit(_edge_following(control, pop, token, config, state_dir, check=check))
    if pop is not None or state_dir is not None:
        raise _fail("--pop and --state-dir apply to --control mode (a config file names its own pop:)")
    if config is None:
        raise _fail(
            "give --config edge.yaml (standalone) or --control URL --pop NAME (follow the control plane)"
        )
    try:
        parsed = load_config(config)
    except ConfigError as error:
        raise _fail(str(error)) from None
    except Exception as error:
        raise _fail(f"{config} cannot be used ({type(error).__name__}: {error}); report this bug") from None
    if check:
        from anycastlb.edge.tunnels import check_tunnels  # noqa: PLC0415 - lean start-up

        try:
            check_tunnels(parsed)
        except ConfigError as error:
            raise _fail(str(error)) from None
        typer.echo(f"{config}: ok ({len(parsed.listeners)} listeners)")
        return
    _raise_file_limit()
    from anycastlb.edge.metrics_dir import prepare_metrics_dir  # noqa: PLC0415 - must precede prometheus

    prepare_metrics_dir()
    from anycastlb.edge.config_source import FileSource  # noqa: PLC0415
    from anycastlb.edge.supervisor import Supervisor  # noqa: PLC0415

    try:
        code = Supervisor(FileSource(config), parsed).run()
    except ConfigError as error:  # what only the supervisor checks (tunnels that cannot coexist)
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(error.strerror or str(error), 1) from None
    raise typer.Exit(code)


def _edge_following(
    url: str, pop: str | None, token: str | None, base: Path | None, state_dir: Path | None, *, check: bool
) -> int:
    """``edge --control URL``: base.yaml + last-known-good at once, then what the control plane says."""
    from anycastlb.edge.config_source import ControlSource, load_base  # noqa: PLC0415 - lean start-up
    from anycastlb.edge.state_store import StateStore, default_state_dir  # noqa: PLC0415
    from anycastlb.model.base import check_name  # noqa: PLC0415

    if pop is None:
        raise _fail("--control needs --pop NAME: the PoP this edge is, as the control plane knows it")
    try:
        check_name(pop, "--pop")
    except ValueError as error:
        raise _fail(str(error)) from None
    if not url.startswith(("http://", "https://")):
        raise _fail(f"--control {url!r} must be an http:// or https:// URL of the control plane")
    if not token:
        raise _fail(
            "--control needs the PoP's token: set ANYCASTLB_POP_TOKEN (preferred: a command line is "
            "visible in ps) or pass --token"
        )
    store = StateStore(state_dir or default_state_dir(pop))
    source = ControlSource(pop, base, store)
    try:
        if check:
            load_base(pop, base)
            saved = store.last_known_good()
            found = f"last-known-good version {saved.state.version}" if saved else "no last-known-good"
            typer.echo(f"{base or 'no base.yaml (defaults)'}: ok; {store.directory}: {found}")
            return 0
        store.prepare()
        parsed = source.initial()
        base_tunnels = load_base(pop, base).tunnels  # parsed has the last-known-good's tunnels too
    except ConfigError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(error.strerror or str(error), 1) from None
    _raise_file_limit()
    from anycastlb.edge.metrics_dir import prepare_metrics_dir  # noqa: PLC0415 - must precede prometheus

    prepare_metrics_dir()
    from anycastlb.edge.follower import FollowerSettings  # noqa: PLC0415
    from anycastlb.edge.supervisor import Supervisor  # noqa: PLC0415

    follow = FollowerSettings(
        url=url.rstrip("/"), pop=pop, token=token, store=store, base_tunnels=base_tunnels
    )
    try:
        return Supervisor(source, parsed, follow).run()
    except ConfigError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(error.strerror or str(error), 1) from None


_DEFAULTS = Limits()


def _limit_option(field: str, help_text: str) -> typer.models.OptionInfo:
    """A typer option for one of the control plane's limits (control/limits.py), with its variable."""
    option, variable = LIMIT_OPTIONS[field]
    found: typer.models.OptionInfo = typer.Option(option, envvar=variable, min=1, help=help_text)
    return found


MaxBodyOption = Annotated[int, _limit_option("max_body_bytes", "Largest request body, bytes (413 above).")]
MaxListenersOption = Annotated[int, _limit_option("listeners", "Listeners per load balancer (422 above).")]
MaxBackendsOption = Annotated[
    int, _limit_option("backends_per_listener", "Backends per listener (422 above).")
]
MaxLbBackendsOption = Annotated[
    int,
    _limit_option(
        "backends_per_load_balancer", "Backends of all listeners of one load balancer (422 above)."
    ),
]
_QUOTA = "Default quota; PUT /v1/tenants/NAME/limits overrides it per tenant (409 above)."
MaxLbsOption = Annotated[int, _limit_option("load_balancers_per_tenant", _QUOTA)]
MaxAddressesOption = Annotated[int, _limit_option("addresses_per_tenant", _QUOTA)]


class Migrate(StrEnum):
    """``anycastlb control --migrate``: who brings the database schema to this release's revision."""

    AUTO = "auto"  # at start, then serve (one host, systemd; PostgreSQL: under an advisory lock)
    ONLY = "only"  # migrate, print what changed and exit: a deploy step (the Helm chart's hook Job)
    OFF = "off"  # never change the schema; refuse to start unless it is at this release's revision


def _migrate_only(database: str) -> int:
    from anycastlb.control.store.engine import StoreError, migrate_database  # noqa: PLC0415

    try:
        change = migrate_database(database)
    except StoreError as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    if change.before == change.after:
        typer.echo(f"schema already at revision {change.after}")
    else:
        before = change.before or "none (a new database)"
        typer.echo(f"schema migrated from revision {before} to {change.after}")
    return 0


@app.command()
def control(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve the API on.")
    ] = "127.0.0.1:8700",
    database: Annotated[
        str,
        typer.Option(
            "--database",
            envvar="ANYCASTLB_DATABASE_URL",
            help="sqlite:///PATH (embedded) or postgresql://USER@HOST/DB. A URL with a password: "
            "prefer the environment variable, a command line is visible to every user (ps).",
        ),
    ] = "sqlite:///state.db",
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Run without ANYCASTLB_ADMIN_TOKEN (development only).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: LogFormatOption = LogFormat.TEXT,
    max_body_bytes: MaxBodyOption = _DEFAULTS.max_body_bytes,
    max_listeners: MaxListenersOption = _DEFAULTS.listeners,
    max_backends_per_listener: MaxBackendsOption = _DEFAULTS.backends_per_listener,
    max_backends_per_load_balancer: MaxLbBackendsOption = _DEFAULTS.backends_per_load_balancer,
    max_load_balancers_per_tenant: MaxLbsOption = _DEFAULTS.load_balancers_per_tenant,
    max_addresses_per_tenant: MaxAddressesOption = _DEFAULTS.addresses_per_tenant,
    platform_network: Annotated[
        list[str] | None,
        typer.Option(
            "--platform-network",
            help="CIDR of the platform's own hosts (PoPs, routers, the store); tenants' backends may not "
            "be in it. Repeatable; also ANYCASTLB_PLATFORM_NETWORKS (comma-separated).",
        ),
    ] = None,
    allow_backend_network: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-backend-network",
            help="LAB ONLY: backends in this CIDR skip the backend policy (e.g. 127.0.0.0/8 for a lab "
            "on loopback). Repeatable; printed as a warning at start.",
        ),
    ] = None,
    migrate: Annotated[
        Migrate,
        typer.Option(
            "--migrate",
            help="auto: bring the database schema to this release's revision at start, then serve. "
            "only: do that and exit (a deploy step; needs no admin token). off: never change the "
            "schema; refuse to start unless it is at this release's revision (replicas behind a "
            "`--migrate only` job, as in the Helm chart).",
        ),
    ] = Migrate.AUTO,
    tunnel_range: Annotated[
        str,
        typer.Option("--tunnel-range", help="IPv4 range the clusters' tunnel networks are cut from."),
    ] = "100.64.0.0/10",
    tunnel_prefix: Annotated[
        int,
        typer.Option("--tunnel-prefix", help="Each cluster's tunnel network size (/16 to /24)."),
    ] = 22,
    tunnel_grace: Annotated[
        float,
        typer.Option(
            "--tunnel-grace",
            help="Seconds a rotated node's old key and address stay a PoP peer (make before break).",
        ),
    ] = 900.0,
) -> None:
    """Run the control plane: tenants, IP pools, load balancers, PoP sync (OpenAPI schema at
    /openapi.json, for any valid token)."""
    setup_logging(log_level, log_format)
    if migrate is Migrate.ONLY:
        raise typer.Exit(_migrate_only(database))
    import ipaddress  # noqa: PLC0415

    from anycastlb.control.server import ServerError, serve  # noqa: PLC0415 - lean edge start-up
    from anycastlb.control.store.engine import StoreError  # noqa: PLC0415
    from anycastlb.control.tunnels.addressing import TunnelSettings  # noqa: PLC0415

    try:
        tunnels = TunnelSettings(
            range=ipaddress.IPv4Network(tunnel_range), prefix=tunnel_prefix, grace=tunnel_grace
        )
    except ValueError as error:
        typer.echo(f"error: --tunnel-range/--tunnel-prefix/--tunnel-grace: {error}", err=True)
        raise typer.Exit(2) from None
    limits = Limits(
        max_body_bytes=max_body_bytes,
        listeners=max_listeners,
        backends_per_listener=max_backends_per_listener,
        backends_per_load_balancer=max_backends_per_load_balancer,
        load_balancers_per_tenant=max_load_balancers_per_tenant,
        addresses_per_tenant=max_addresses_per_tenant,
    )
    try:
        code = serve(
            listen,
            database,
            insecure_dev=insecure_dev,
            log_level=log_level,
            limits=limits,
            platform_networks=platform_network,
            allow_backend_networks=allow_backend_network,
            migrate_schema=migrate is Migrate.AUTO,
            tunnels=tunnels,
        )
    except (ServerError, StoreError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def controller(
    control: Annotated[str, typer.Option("--control", help="The control plane's URL.")],
    cluster: Annotated[
        str, typer.Option("--cluster", help="This cluster's name (prefixes its load balancers).")
    ],
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", help="Default: in-cluster, else KUBECONFIG, else ~/.kube/config."),
    ] = None,
    default_class: Annotated[
        bool,
        typer.Option("--default-class", help="Also take LoadBalancer Services without loadBalancerClass."),
    ] = False,
    load_balancer_class: Annotated[
        str, typer.Option("--load-balancer-class", help="The spec.loadBalancerClass this controller serves.")
    ] = "anycastlb.io/anycast",
    node_address_types: Annotated[
        str, typer.Option("--node-address-types", help="Node address types the PoPs reach, in order.")
    ] = "ExternalIP,InternalIP",
    pops: Annotated[str, typer.Option("--pops", help="PoPs that serve this cluster (default: all).")] = "",
    tunnels: Annotated[
        bool,
        typer.Option(
            "--tunnels",
            help="Nodes reach the PoPs through WireGuard tunnels: register them, use their tunnel "
            "addresses as backends, write the anycastlb-tunnel Secret for the node agent.",
        ),
    ] = False,
    tunnel_nodes: Annotated[
        str,
        typer.Option(
            "--tunnel-nodes",
            metavar="SELECTOR",
            help="With --tunnels, only the nodes whose labels match this selector (as in kubectl -l, "
            "e.g. 'topology.kubernetes.io/region=metal') are reached through their tunnel and "
            "registered; the others are reached at their own address (--node-address-types). "
            "Default: every node.",
        ),
    ] = "",
    leader_election_namespace: Annotated[
        str | None, typer.Option("--leader-election-namespace", help="Where the Lease lives.")
    ] = None,
    metrics_port: Annotated[int, typer.Option("--metrics-port", help="/healthz and /metrics.")] = 9101,
    resync: Annotated[float, typer.Option("--resync", help="Seconds between full resyncs.")] = 300.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Run the Kubernetes controller: Services of our class in, load balancers and status out."""
    import asyncio  # noqa: PLC0415

    setup_logging(log_level, log_format)
    from anycastlb.k8s.selectors import SelectorError, parse_selector  # noqa: PLC0415
    from anycastlb.k8s.serve import ControllerOptions, StartError, run_controller  # noqa: PLC0415
    from anycastlb.k8s.views import ControllerSettings  # noqa: PLC0415

    try:
        try:
            selector = parse_selector(tunnel_nodes) if tunnel_nodes.strip() else None
        except SelectorError as error:
            raise ValueError(f"--tunnel-nodes {error}; write a label selector as for kubectl -l") from None
        settings = ControllerSettings(
            cluster=cluster,
            load_balancer_class=load_balancer_class,
            default_class=default_class,
            node_address_types=tuple(item.strip() for item in node_address_types.split(",") if item.strip()),
            pops=tuple(item.strip() for item in pops.split(",") if item.strip()),
            tunnels=tunnels,
            tunnel_nodes=selector,
        )
        options = ControllerOptions(
            control_url=control,
            settings=settings,
            kubeconfig=kubeconfig,
            leader_namespace=leader_election_namespace,
            metrics_port=metrics_port,
            resync=resync,
        )
        code = asyncio.run(run_controller(options))
    except (StartError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def demo(log_format: LogFormatOption = LogFormat.TEXT) -> None:
    """Run an edge in front of three nginx nodes on loopback and show what they see."""
    setup_logging("warning", log_format)
    from anycastlb.lab.demo import run_demo  # noqa: PLC0415 - keeps `anycastlb edge` start-up lean

    raise typer.Exit(run_demo())


lab_app = typer.Typer(
    help="A real anycast network on this box (network namespaces, BIRD, two PoPs, three nodes). Root only.",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")
LabName = Annotated[
    str, typer.Option("--name", help="Lab name: prefixes its namespaces (1-8 letters/digits).")
]
LabRoot = Annotated[Path, typer.Option("--state-root", help="Where labs keep configs, logs and state.")]
_LAB_ROOT = Path("/run/anycastlb-lab")


def _lab_error(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(1)


@lab_app.command("up")
def lab_up(
    name: LabName = "alb", state_root: LabRoot = _LAB_ROOT, log_format: LogFormatOption = LogFormat.TEXT
) -> None:
    """Build the lab (or do nothing if it is up); returns once the router forwards the VIP to fra.
    ``--log-format`` applies to the edges it starts (their logs: LAB/POP/edge.log)."""
    setup_logging("warning", log_format)
    from anycastlb.lab.anycast import AnycastLab, LabError  # noqa: PLC0415 - lean start-up

    try:
        result = AnycastLab(name, state_root).up()
    except (LabError, ValueError) as error:
        raise _lab_error(error) from None
    state = "was already up" if result.already_up else f"is up after {result.seconds:.1f}s"
    typer.echo(f"lab {name} {state}; `anycastlb lab status` shows it")


@lab_app.command("status")
def lab_status(name: LabName = "alb", state_root: LabRoot = _LAB_ROOT) -> None:
    """PoPs (edge, BGP session, announced VIPs), the router's routes, the nodes' health."""
    from rich.console import Console  # noqa: PLC0415

    from anycastlb.lab.anycast import AnycastLab, LabError  # noqa: PLC0415
    from anycastlb.lab.observe import collect_status  # noqa: PLC0415
    from anycastlb.lab.status import render_status  # noqa: PLC0415

    try:
        status = collect_status(AnycastLab(name, state_root))
    except (LabError, ValueError) as error:
        raise _lab_error(error) from None
    render_status(status, Console())
    if status.problem is not None:
        raise typer.Exit(1)


class FailoverMode(StrEnum):
    """``lab failover --mode``: an enum, so click refuses another word as a usage error (exit 2)."""

    DRAIN = "drain"
    KILL = "kill"
    CUT = "cut"
    SILENT = "silent"


@lab_app.command("failover")
def lab_failover(
    pop: Annotated[str, typer.Option("--pop", help="The PoP to fail.")] = "fra",
    mode: Annotated[
        FailoverMode,
        typer.Option(
            "--mode",
            help="drain (SIGTERM), kill (SIGKILL), cut (its cable to the nodes is unplugged), "
            "silent (its switch port dies).",
        ),
    ] = FailoverMode.DRAIN,
    restore: Annotated[
        bool, typer.Option(help="Bring the PoP back afterwards and measure the return.")
    ] = True,
    name: LabName = "alb",
    state_root: LabRoot = _LAB_ROOT,
) -> None:
    """Fail a PoP under client load; print how long traffic took to move and what failed."""
    from rich.console import Console  # noqa: PLC0415

    from anycastlb.lab.anycast import AnycastLab, LabError  # noqa: PLC0415
    from anycastlb.lab.failover import MODES, run_failover  # noqa: PLC0415
    from anycastlb.lab.report import render_failover  # noqa: PLC0415

    chosen = next(m for m in MODES if m == mode.value)  # FailoverMode mirrors MODES (a unit test checks)
    started = time.monotonic()

    def progress(step: str) -> None:  # on stderr: stdout keeps only the report
        typer.echo(f"[{time.monotonic() - started:4.1f}s] {step}", err=True)

    try:
        lab = AnycastLab(name, state_root)
        result = run_failover(lab, pop, chosen, restore=restore, progress=progress)
    except (LabError, ValueError) as error:
        raise _lab_error(error) from None
    except KeyError as error:  # an unknown PoP: the message lists the known ones
        raise _lab_error(ValueError(error.args[0])) from None
    render_failover(result, Console())


@lab_app.command("down")
def lab_down(name: LabName = "alb", state_root: LabRoot = _LAB_ROOT) -> None:
    """Stop every lab process, delete its namespaces and its state dir."""
    from anycastlb.lab.anycast import AnycastLab, LabError  # noqa: PLC0415

    try:
        result = AnycastLab(name, state_root).down()
    except (LabError, ValueError) as error:
        raise _lab_error(error) from None
    if not (result.stopped or result.namespaces or result.state_dir_removed):
        typer.echo(f"lab {name} was not up: nothing to remove")
        return
    stopped, deleted = len(result.stopped), len(result.namespaces)
    typer.echo(f"lab {name} removed: {stopped} processes stopped, {deleted} namespaces deleted")


@lab_app.command("acme")
def lab_acme(name: LabName = "acme", state_root: LabRoot = _LAB_ROOT) -> None:
    """cert-manager's HTTP-01 through the edge, in a small lab of its own (client, PoP, node): pebble
    validates via VIP:80, the certificate is issued, a TLS client verifies it via VIP:443."""
    from rich.console import Console  # noqa: PLC0415 - lean start-up

    from anycastlb.lab.acme import run_acme_lab  # noqa: PLC0415
    from anycastlb.lab.acme_report import problems, render_acme  # noqa: PLC0415
    from anycastlb.lab.netns import LabError  # noqa: PLC0415

    workdir = state_root / name
    try:
        workdir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        why = f"{workdir} exists: an ACME lab named {name} runs, or its last run failed (read it, then rm it)"
        raise _lab_error(LabError(why)) from None
    try:
        run = run_acme_lab(workdir, name)
    except (LabError, ValueError) as error:
        typer.echo(f"(configs and logs kept in {workdir})", err=True)
        raise _lab_error(error) from None
    render_acme(Console(), run)
    if problems(run):
        typer.echo(f"(configs and logs kept in {workdir})", err=True)
        raise typer.Exit(1)
    shutil.rmtree(workdir)
    if not any(state_root.iterdir()):
        state_root.rmdir()


# The control plane's CLI: talks to `anycastlb control` over HTTP (anycastlb.control.cli).
app.add_typer(tenants.app, name="tenants")
app.add_typer(pools.app, name="pools")
app.add_typer(ips.app, name="ips")
app.add_typer(lb.app, name="lb")
app.add_typer(pops.app, name="pops")
app.add_typer(clusters.app, name="clusters")
app.command("audit")(audit.audit)
app.command("usage")(usage.usage)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{text!r}: expected ADDRESS:PORT, e.g. 0.0.0.0:9479")
    return host.strip("[]"), int(port)


@app.command("tunnel-agent")
def tunnel_agent(
    config_dir: Annotated[
        Path,
        typer.Option(
            "--config-dir", help="Directory holding NODE.json (the mounted Secret anycastlb-tunnel)."
        ),
    ],
    node: Annotated[
        str, typer.Option("--node", envvar="NODE_NAME", help="This node's name, as Kubernetes knows it.")
    ],
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Serve /metrics on ADDRESS:PORT (default: off).")
    ] = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.1, help="Seconds between looks at the config file.")
    ] = 1.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Bring up this node's WireGuard tunnel to every PoP and keep it as the config file says."""
    setup_logging(log_level, log_format)
    from anycastlb.tunnel.agent import AgentSettings, run_agent  # noqa: PLC0415 - lean start-up

    endpoint = _host_port(metrics) if metrics is not None else None
    settings = AgentSettings(config_dir=config_dir, node=node, metrics=endpoint, poll_interval=poll_interval)
    try:
        code = run_agent(settings)
    except OSError as error:
        raise _fail(f"tunnel-agent: {error.strerror or error}", 1) from None
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version (as --version does)."""
    typer.echo(_version_line())


def main() -> None:
    app(prog_name="anycastlb")


if __name__ == "__main__":
    main()

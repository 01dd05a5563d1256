"""The one ``anycastlb`` command, with a sub-command per part of the system."""

import resource
from pathlib import Path
from typing import Annotated

import typer

from anycastlb import __version__
from anycastlb.logs import setup_logging
from anycastlb.model.config import ConfigError, load_config

app = typer.Typer(
    help="anycastlb: anycast L4 load balancer for Kubernetes ingress.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to edge.yaml.")]


def _raise_file_limit() -> None:
    """A proxy holds two sockets (and briefly two pipes) per connection: use every fd we may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = max(hard, int(Path("/proc/sys/fs/nr_open").read_text()))
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))  # root may raise the hard limit
    except (OSError, ValueError):
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@app.command()
def edge(
    config: ConfigOption,
    check: Annotated[bool, typer.Option("--check", help="Validate the config and exit.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run a PoP's data plane from a config file (standalone mode)."""
    setup_logging(log_level)
    try:
        parsed = load_config(config)
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if check:
        typer.echo(f"{config}: ok ({len(parsed.listeners)} listeners)")
        return
    _raise_file_limit()
    from anycastlb.edge.metrics_dir import prepare_metrics_dir  # noqa: PLC0415 - must precede prometheus

    prepare_metrics_dir()
    from anycastlb.edge.supervisor import Supervisor  # noqa: PLC0415

    try:
        code = Supervisor(config, parsed).run()
    except OSError as error:
        typer.echo(f"error: {error.strerror or error}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def demo() -> None:
    """Run an edge in front of three nginx nodes on loopback and show what they see."""
    setup_logging("warning")
    from anycastlb.lab.demo import run_demo  # noqa: PLC0415 - keeps `anycastlb edge` start-up lean

    raise typer.Exit(run_demo())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app(prog_name="anycastlb")


if __name__ == "__main__":
    main()

"""The `clipshoe` command line: one subcommand per job, one function per subcommand.

Add a subcommand by writing `add_<name>_command(subparsers)` that registers its
arguments and sets `run=<function taking the parsed args, returning an exit code>`,
then listing it in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from replay_shop.records import Faults

FAULT_PRESETS: dict[str, Callable[[], Faults]] = {"none": Faults.none, "default": Faults.default_on}


def subcommand(subparsers: argparse._SubParsersAction, name: str, summary: str,
               description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help shows every default."""
    return subparsers.add_parser(name, help=summary, description=description or summary,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def command_group(subparsers: argparse._SubParsersAction, name: str, summary: str) -> argparse._SubParsersAction:
    """A subcommand whose own subcommands (`clipshoe NAME ACTION`) are added to the returned object."""
    return subcommand(subparsers, name, summary).add_subparsers(dest="action", required=True, metavar="ACTION")


def add_catalog_arguments(parser: argparse.ArgumentParser, products_per_site: int) -> None:
    """What the synthetic catalog is made of, for every command that starts a replay shop."""
    parser.add_argument("--seed", type=int, default=0, help="the replay shop's catalog seed")
    parser.add_argument("--products-per-site", type=int, default=products_per_site,
                        help="products each synthetic shop lists")


def run_replay_shop(args: argparse.Namespace) -> int:
    # Imported here: other subcommands should not pay for the shop's imports.
    from replay_shop.catalog import Catalog
    from replay_shop.server import ReplayShop, serve_forever

    catalog = Catalog(seed=args.seed, products_per_site=args.products_per_site, epoch=args.epoch)
    if args.ground_truth:
        print(f"ground truth written to {catalog.write_ground_truth(args.ground_truth)}", flush=True)

    def announce(shop: ReplayShop) -> None:
        print(f"replay shop serving at {shop.url} (Ctrl-C to stop)", flush=True)

    if args.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    serve_forever(catalog, faults=FAULT_PRESETS[args.faults](), host=args.host, port=args.port, on_ready=announce,
                  access_log=args.access_log)
    return 0


def add_replay_shop_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subcommand(subparsers, "replay-shop", "serve the synthetic shops in the real sites' response shapes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0: any free port (printed)")
    add_catalog_arguments(parser, products_per_site=200)
    parser.add_argument("--faults", choices=sorted(FAULT_PRESETS), default="none",
                        help="planted HTTP faults: none, or the default mix used by the fault tests")

    def epoch_number(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"epochs count from 1, not {text!r}")
        return int(text)

    parser.add_argument("--epoch", type=epoch_number, default=1, metavar="N",
                        help="serve the catalog as it is at epoch N (1: as generated; each later one adds planted "
                             "price changes, new and removed products and changed images); POST "
                             "/_shop/epoch?epoch=N moves a running shop")
    parser.add_argument("--ground-truth", metavar="PATH", help="also write the catalog's ground truth JSON here")
    parser.add_argument("--access-log", action="store_true", help="log every request (slows the shop down)")
    parser.set_defaults(run=run_replay_shop)


def run_demo(args: argparse.Namespace) -> int:
    from clipshoe_pipeline.demo import run_demo as demo

    sites = [site.strip() for site in args.sites.split(",") if site.strip()]
    return demo(seed=args.seed, products_per_site=args.products_per_site, sites=sites,
                faults=FAULT_PRESETS[args.faults]())


def add_demo_command(subparsers: argparse._SubParsersAction) -> None:
    from scrapers.items import SITES

    parser = subcommand(
        subparsers, "demo", "run the pipeline against the replay shop (synthetic data)",
        "Crawl the replay shop (synthetic, seeded), curate, fine-tune the tiny CPU model and evaluate it, in the "
        "persistent Dagster instance under the data dir; ends with the tables.")
    add_catalog_arguments(parser, products_per_site=100)
    parser.add_argument("--sites", default=",".join(SITES), help="comma-separated subset of the five sites")
    parser.add_argument("--faults", choices=sorted(FAULT_PRESETS), default="default",
                        help="planted HTTP faults: default is the realistic mix, none turns them off")
    parser.set_defaults(run=run_demo)


# dg dev waits up to a minute per service on shutdown; a healthy one takes seconds.
DEV_SHUTDOWN_TIMEOUT_S = 30.0
# A terminal's Ctrl-C, a `kill` or a closed terminal reach `clipshoe dev` only, since
# dg dev runs in a session of its own; each is passed on to dg dev's process group.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SUPERVISE_POLL_S = 0.2


def run_dev(args: argparse.Namespace) -> int:
    """`dg dev` on this project (Dagster's own command; `dagster dev` is superseded) with
    run history under the data dir; unless --live, the synthetic shops run alongside so
    UI-launched crawls work offline, and stop when dg dev has."""
    from clipshoe_common import PROJECT_ROOT
    from clipshoe_pipeline.paths import ensure_dagster_home
    from clipshoe_pipeline.settings import REPLAY_URL

    ensure_dagster_home()
    command = [str(Path(sys.executable).with_name("dg")), "dev", "--host", args.host, "--port", str(args.port)]
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix}  # dg runs the project in the environment we run in
    if args.live:
        return supervise(command, cwd=PROJECT_ROOT, env=env, shutdown_timeout=args.shutdown_timeout)

    from replay_shop.catalog import Catalog
    from replay_shop.server import running_shop

    catalog = Catalog(seed=args.seed, products_per_site=args.products_per_site)
    with running_shop(catalog, faults=Faults.default_on()) as shop:
        print(f"replay shop at {shop.url} (synthetic data); crawls launched from the UI go there", flush=True)
        # The UI's code server reads it as the crawler resource's default (clipshoe_pipeline.settings).
        return supervise(command, cwd=PROJECT_ROOT, env={**env, REPLAY_URL: shop.url},
                         shutdown_timeout=args.shutdown_timeout)


def supervise(command: list[str], *, cwd: Path, env: dict[str, str], shutdown_timeout: float) -> int:
    """Run `command` in a new session until it exits, passing FORWARDED_SIGNALS on to its
    process group, which holds everything it starts (webserver, daemon, code server, run
    workers). Once a signal came, it gets `shutdown_timeout` seconds before the group is
    killed; whatever of the group is left when it exits is killed too, so nothing of it
    outlives us. Returns 128 + the first signal's number when a signal ended it (the
    shell's convention), else its own exit status."""
    received: list[int] = []

    def record(signum: int, _frame: object) -> None:
        # Forwarded by the loop below, not here: a handler can run before Popen has
        # returned, when there is no group to signal yet.
        received.append(signum)

    previous = {signum: signal.signal(signum, record) for signum in FORWARDED_SIGNALS}
    process = None
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)
        forwarded, deadline = 0, None
        while not _exited(process.pid):
            for signum in received[forwarded:]:
                _signal_group(process.pid, signum)
            forwarded = len(received)
            if received and deadline is None:
                deadline = time.monotonic() + shutdown_timeout
            if deadline is not None and time.monotonic() >= deadline:
                print(f"{Path(command[0]).name} did not stop {shutdown_timeout:g} s after "
                      f"{signal.Signals(received[0]).name}: killing its process group", file=sys.stderr, flush=True)
                break
            time.sleep(SUPERVISE_POLL_S)
    finally:
        if process is not None:  # also when the loop itself failed: nothing of the group may outlive us
            # Before reaping: until then the leader's pid, which is the group's id, cannot be reused.
            _signal_group(process.pid, signal.SIGKILL)
            status = process.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        return 128 + received[0]
    return 128 - status if status < 0 else status


def _exited(pid: int) -> bool:
    """Whether the child has exited, leaving it unreaped (a zombie that still holds its pid)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:  # the group is empty already
        pass


def add_dev_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subcommand(
        subparsers, "dev", "the Dagster UI (dg dev), with the replay shop unless --live",
        "dg dev on this project, with run history under the data dir and, unless --live, the replay shop running "
        "so crawls launched from the UI work offline. Ctrl-C or SIGTERM stops dg dev and everything it started.")
    parser.add_argument("--live", action="store_true", help="no replay shop: crawls go to the real sites")
    parser.add_argument("--host", default="127.0.0.1", help="the UI's address")
    parser.add_argument("--port", type=int, default=3000, help="the UI's port")
    parser.add_argument("--shutdown-timeout", type=float, default=DEV_SHUTDOWN_TIMEOUT_S, metavar="SECONDS",
                        help="after Ctrl-C or SIGTERM, how long dg dev may take to stop before it is killed")
    add_catalog_arguments(parser, products_per_site=100)
    parser.set_defaults(run=run_dev)


def run_zappos_fetch(args: argparse.Namespace) -> int:
    from clipshoe_pipeline.evaluation.zappos_fetch import LICENCE_NOTICE, OFFICIAL_URLS, FetchError, fetch_zappos
    from clipshoe_pipeline.paths import data_paths

    dest = args.dest or data_paths().zappos
    print(LICENCE_NOTICE, flush=True)
    try:
        fetched, report = fetch_zappos(args.url or OFFICIAL_URLS, dest, force=args.force)
    except FetchError as error:
        print(f"clipshoe zappos fetch: {error}", file=sys.stderr)
        return 1
    for archive in fetched:
        print(archive.summary())
    print(f"UT Zappos50K is at {dest}; the evaluation finds it there when neither its zappos_dir nor "
          "CLIPSHOE_ZAPPOS_DIR names another copy. What the reader found:")
    for name, value in vars(report).items():
        print(f"  {name}: {value}")
    return 0


def add_zappos_command(subparsers: argparse._SubParsersAction) -> None:
    actions = command_group(subparsers, "zappos", "UT Zappos50K, the public dataset the evaluation scores on")
    fetch = subcommand(
        actions, "fetch", "download, verify and unpack UT Zappos50K (non-commercial research use only)",
        "Download the official archives (resuming an interrupted download), check every member's CRC and the "
        "layout, and unpack them atomically into the destination, skipping macOS litter. An existing copy is "
        "left alone unless --force.")
    fetch.add_argument("--url", action="append", metavar="URL",
                       help="an archive to fetch, repeatable; none: the official square images and data archives")
    fetch.add_argument("--dest", type=Path, metavar="DIR",
                       help="where the copy goes; none: the data dir's zappos/ ($CLIPSHOE_DATA_DIR/zappos)")
    fetch.add_argument("--force", action="store_true", help="download and replace folders that are there already")
    fetch.set_defaults(run=run_zappos_fetch)


def run_models_fetch(args: argparse.Namespace) -> int:
    from clipshoe_pipeline.training.weights import MissingWeights, resolve_weights

    try:
        weights = resolve_weights(args.model, args.pretrained)
    except (MissingWeights, ValueError) as error:
        print(f"clipshoe models fetch: {error}", file=sys.stderr)
        return 1
    print(f"{args.model}: {weights.label} ({weights.file})")
    return 0


def run_models_list(args: argparse.Namespace) -> int:
    from clipshoe_pipeline.training.hub import cached_repos

    repos = cached_repos()
    if not repos:
        print("no models in the Hugging Face cache yet (clipshoe models fetch MODEL)")
    for repo in repos:
        tags = f"  open_clip: {', '.join(repo.open_clip_tags)}" if repo.open_clip_tags else ""
        print(f"{repo.repo}  {repo.size_bytes / 2**20:,.1f} MiB in {repo.files} files  {repo.path}{tags}")
    return 0


def run_models_convert(args: argparse.Namespace) -> int:
    from clipshoe_pipeline.training.convert_hf import ConversionError, convert_hf_clip

    try:
        folder = convert_hf_clip(args.source, args.out_dir, overwrite=args.overwrite)
    except ConversionError as error:
        print(f"clipshoe models convert-hf-clip: {error}", file=sys.stderr)
        return 1
    print(f"open_clip model written; score it as a peer with model: local-dir:{folder.absolute()}")
    return 0


def add_models_command(subparsers: argparse._SubParsersAction) -> None:
    actions = command_group(subparsers, "models", "the CLIP weights training and evaluation start from")
    fetch = subcommand(
        actions, "fetch", "download a model's weights (and text tower files) into the Hugging Face cache",
        "What a training or evaluation of MODEL would download on first use, fetched ahead of time (e.g. on a "
        "login node before a GPU job without network). HF_ENDPOINT names a mirror, HF_HOME the cache.")
    fetch.add_argument("model", help="an open_clip model config (xlm-roberta-base-ViT-B-32), hf-hub:org/repo "
                                     "or local-dir:/path")
    fetch.add_argument("--pretrained", metavar="TAG", help="an open_clip pretrained tag of MODEL (schema models "
                                                          "bring their own weights)")
    fetch.set_defaults(run=run_models_fetch)
    subcommand(actions, "list", "the models in the Hugging Face cache and the open_clip tags they serve"
               ).set_defaults(run=run_models_list)
    convert = subcommand(
        actions, "convert-hf-clip", "turn a transformers CLIPModel (e.g. FashionCLIP) into an open_clip folder",
        "Convert a Hugging Face transformers CLIPModel — a hub repository such as patrickjohncyh/fashion-clip, "
        "or a local folder — into an open_clip local-dir: folder (open_clip_config.json + "
        "open_clip_model.safetensors) that the evaluation scores as a peer.")
    convert.add_argument("source", help="hub repository id or local folder of a transformers CLIPModel")
    convert.add_argument("out_dir", type=Path, help="the open_clip folder to write")
    convert.add_argument("--overwrite", action="store_true", help="replace OUT_DIR when it is not empty")
    convert.set_defaults(run=run_models_convert)


COMMANDS = (add_replay_shop_command, add_demo_command, add_dev_command, add_zappos_command, add_models_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipshoe", description="CLIP Shoe: crawl, curate, train, evaluate.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

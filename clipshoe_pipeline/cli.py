"""The `clipshoe` command line: one subcommand per job, one function per subcommand.

Add a subcommand by writing `add_<name>_command(subparsers)` that registers its
arguments and sets `run=<function taking the parsed args, returning an exit code>`,
then listing it in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from replay_shop.records import Faults

FAULT_PRESETS: dict[str, Callable[[], Faults]] = {"none": Faults.none, "default": Faults.default_on}


def subcommand(subparsers: argparse._SubParsersAction, name: str, summary: str,
               description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help shows every default."""
    return subparsers.add_parser(name, help=summary, description=description or summary,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_catalog_arguments(parser: argparse.ArgumentParser, products_per_site: int) -> None:
    """What the synthetic catalog is made of, for every command that starts a replay shop."""
    parser.add_argument("--seed", type=int, default=0, help="the replay shop's catalog seed")
    parser.add_argument("--products-per-site", type=int, default=products_per_site,
                        help="products each synthetic shop lists")


def run_replay_shop(args: argparse.Namespace) -> int:
    # Imported here: other subcommands should not pay for the shop's imports.
    from replay_shop.catalog import Catalog
    from replay_shop.server import ReplayShop, serve_forever

    catalog = Catalog(seed=args.seed, products_per_site=args.products_per_site)
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


def run_dev(args: argparse.Namespace) -> int:
    from clipshoe_pipeline.demo import run_dev as dev

    return dev(replay=not args.live, seed=args.seed, products_per_site=args.products_per_site, port=args.port)


def add_dev_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subcommand(
        subparsers, "dev", "the Dagster UI (dg dev), with the replay shop unless --live",
        "dg dev on this project, with run history under the data dir and, unless --live, the replay shop running "
        "so crawls launched from the UI work offline.")
    parser.add_argument("--live", action="store_true", help="no replay shop: crawls go to the real sites")
    parser.add_argument("--port", type=int, default=3000, help="the UI's port")
    add_catalog_arguments(parser, products_per_site=100)
    parser.set_defaults(run=run_dev)


COMMANDS = (add_replay_shop_command, add_demo_command, add_dev_command)


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

"""`netprobe diagnose`: the technician's one-shot check, in English or Bahasa Indonesia."""

from __future__ import annotations

import argparse
import asyncio

from agent.cli.common import add_config_arg, load_config_or_exit
from agent.diagnose.run import DiagnoseOptions, diagnose


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help='print {"verdict": ..., "readings": [...]}')
    p.add_argument("--lang", choices=("en", "id"), default="en", help="language of verdicts and hints")
    p.add_argument("--no-throughput", action="store_true", help="skip the throughput test (it costs data)")


def main(args: argparse.Namespace) -> int:
    cfg = load_config_or_exit(args.config)
    options = DiagnoseOptions(lang=args.lang, as_json=args.json, throughput=not args.no_throughput)
    result = asyncio.run(diagnose(cfg, options))
    print(result.to_json() if args.json else result.render(args.lang))
    return result.exit_code

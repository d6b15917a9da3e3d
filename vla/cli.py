"""The single ``vla`` command. Subcommands are registered by module path and imported only when
run, so ``vla --help`` never imports torch, tensorflow, robosuite or transformers.

A subcommand module defines ``add_arguments(parser)`` and ``main(args) -> int | None``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("finetune.commands.demo", "end-to-end: collect Lift demos, fine-tune, evaluate, report"),
    "collect": ("sim_eval.commands.collect", "record scripted-expert demos from a sim task into RLDS"),
    "stats": ("data_pipelines.commands.stats", "compute/print normalization stats of a dataset"),
    "check": ("data_pipelines.commands.check", "check a dataset / observation file against a checkpoint's embodiment"),
    "finetune": ("finetune.commands.finetune", "fine-tune a policy (full or LoRA per embodiment)"),
    "eval": ("sim_eval.commands.eval", "generalization eval of a policy in simulation"),
    "serve": ("serve.commands.serve", "serve a checkpoint over HTTP + openpi WebSocket"),
    "predict": ("vla.commands.predict", "run a policy once on an observation and time it"),
    "info": ("vla.commands.info", "print a checkpoint's config, embodiments and sizes"),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vla",
        description="Vision-language-action policy stack: data, fine-tuning, sim eval, serving.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / usage errors
        parser.print_help()
        return 2 if argv else 0
    name = argv[0]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            print(f"vla {name}: not yet available in this version ({module_name} is not implemented)", file=sys.stderr)
            return 3
        raise
    sub = argparse.ArgumentParser(prog=f"vla {name}", description=help_text)
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        rc = module.main(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, ConnectionError) as e:
        # bad input from the user, or a server that refused / cannot be reached: one clear line, no traceback
        print(f"vla {name}: error: {e}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())

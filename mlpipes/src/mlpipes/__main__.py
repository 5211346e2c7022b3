"""The ``mlpipes`` command: toolkit-level tools that belong to no one pipeline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlpipes import __version__
from mlpipes.errors import UserError


def serve(args: argparse.Namespace) -> None:
    from mlpipes.serve import make_server

    server = make_server(args.root, args.models, port=args.port)
    host, port = server.server_address[:2]
    print(f"serving {Path(args.root).resolve()} and models from {', '.join(args.models) or 'its models/'}")
    print(f"open http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlpipes", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mlpipes {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    cmd = sub.add_parser(
        "serve",
        help="serve the web app and exported ONNX models on 127.0.0.1",
        description="Serve the web app (with COOP/COEP headers and wasm MIME types) and the .onnx files of "
        "the model folders at /models/, listed with their metadata at /models/index.json.",
    )
    cmd.add_argument("--root", default="web", help="the web app's folder [default: web]")
    cmd.add_argument(
        "--models",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of .onnx files, e.g. ~/.mlpipes/mnist/weights (repeatable) [default: ROOT/models]",
    )
    cmd.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one) [default: 8000]")
    cmd.set_defaults(run=serve)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except UserError as e:
        print(f"mlpipes: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # e.g. the port is taken
        print(f"mlpipes: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

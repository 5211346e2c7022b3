"""mlpipes: tools that belong to no one pipeline. Serve the web app and exported models, or start a new pipeline."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from mlpipes import __version__
from mlpipes.cli import run_cli
from mlpipes.errors import UserError


def serve(
    root: Annotated[Path, "the web app's folder"] = Path("web"),
    models: Annotated[list[Path], "a folder of .onnx files, e.g. ~/.mlpipes/mnist/weights (default: ROOT/models)"] = (),
    port: Annotated[int, "port on 127.0.0.1 (0: any free one)"] = 8000,
) -> None:
    """Serve the web app and exported ONNX models on 127.0.0.1.

    The web app is served with COOP/COEP headers and wasm MIME types; the .onnx files of the model
    folders at /models/, listed with their metadata at /models/index.json. Ctrl-C stops.
    """
    from mlpipes.serve import make_server

    server = make_server(root, models, port=port)
    host, bound = server.server_address[:2]
    print(f"serving {root.resolve()} and models from {', '.join(map(str, models)) or 'its models/'}")
    print(f"open http://{host}:{bound}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def new(
    path: Annotated[str, "folder of the new pipeline package; its last part names the package"],
    parent: Annotated[str, "a pipeline package to subclass (its config, starting from its feature weights)"] = "",
) -> None:
    """Create a new pipeline package (model, train, dataset, preprocess, config, CLI, tests) at PATH."""
    try:
        from mlpipes.scaffold import new as scaffold
    except ModuleNotFoundError as e:
        if e.name != "mlpipes.scaffold":
            raise
        raise UserError(
            f"this mlpipes {__version__} cannot create pipelines (no mlpipes.scaffold module); upgrade mlpipes"
        ) from None
    scaffold(path, parent)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli([serve, new], None, prog="mlpipes", version=__version__, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())

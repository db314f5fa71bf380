"""Where cargo puts this workspace's binaries, found the way cargo does: `cargo metadata`'s
`target_directory`, which honours CARGO_TARGET_DIR, `.cargo/config.toml` and `build.target-dir`."""

import json
import os
import subprocess
from pathlib import Path


def target_directory() -> Path:
    """The workspace's target directory."""
    out = subprocess.run(
        [os.environ.get("CARGO", "cargo"), "metadata", "--format-version", "1", "--no-deps"],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def binary(name: str, profile: str = "debug") -> Path:
    """A workspace binary built with `profile` (`debug` or `release`)."""
    return target_directory() / profile / name


if __name__ == "__main__":
    print(target_directory())

#!/usr/bin/env python3
"""`make release`: everything needed to deploy pinrelay without Rust, in dist/.

Writes, for the version in cli/Cargo.toml:
- pinrelay-<version>-<function>-<arch>.zip for ingest, dispatch and watch, arch x86_64 and arm64
  (the Architecture parameter's values): each a `bootstrap` executable (mode 0755), the layout the
  Lambda `provided.al2023` runtime runs. Each function is built alone (`cargo lambda build --release
  --package <function>`), so it links only the library features it enables, as `make
  bundle-sizes` measures them;
- pinrelay-<version>-<x86_64|aarch64>-linux.tar.gz: the `pinrelay` CLI for Linux, in a folder of
  the same name with README.md. Linked by zig against glibc 2.17, it runs on any Linux from 2014 on;
- template.yaml: template.yaml with each function's code read from S3 instead of built by `sam
  build`: the parameters CodeBucket (default --bucket) and CodeKeyPrefix (default --prefix) and
  the Architecture parameter choose the key, `<prefix>/pinrelay-<version>-<function>-<arch>.zip`,
  and no `Metadata: BuildMethod` is left. It is then checked: the SAM translator expands it to the
  expected S3 locations. The `AWS::ServerlessRepo::Application` metadata is added only if every
  resource type is one SAR accepts (scripts/sar_check.py);
- SHA256SUMS over all of the above (`sha256sum -c SHA256SUMS`), and release.json, what
  --upload reads.

The archives are reproducible: fixed timestamps, owners and modes.

Needs no AWS credentials. Uploading is separate: `--upload` (`make release-upload`) copies the
zips and template.yaml to s3://<bucket>/<prefix>/ with the AWS CLI.

Build tools: cargo-lambda and ziglang (pip, scripts/requirements-release.txt, which `make release`
installs into target/pyenv-release), the rustup targets x86_64-unknown-linux-gnu and
aarch64-unknown-linux-gnu, and ruamel.yaml (scripts/requirements-test.txt), which edits the
template keeping its tags (!Sub, !Ref, !If) and comments.

Usage:
  release.py --bucket my-bucket [--prefix pinrelay/0.1.0] [--out dist] [--arch x86_64 --arch arm64]
  release.py --template-only --bucket example --out target/release-check   # no build (make test)
  release.py --upload [--out dist]                                         # aws s3 cp, after a release
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sar_check  # noqa: E402  (scripts/sar_check.py)

FUNCTIONS = {"ingest": "IngestFunction", "dispatch": "DispatchFunction", "watch": "WatchFunction"}
# Lambda architecture name -> (Rust target, the CLI archive's architecture name).
ARCHES = {
    "x86_64": ("x86_64-unknown-linux-gnu", "x86_64"),
    "arm64": ("aarch64-unknown-linux-gnu", "aarch64"),
}
# zig links against this glibc (cargo-zigbuild's `<target>.<glibc>` suffix): old enough for any
# current Linux, and below Amazon Linux 2023's 2.34.
GLIBC = "2.17"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# AWS::ServerlessRepo::Application, added only when SAR accepts every resource type; the URLs come
# from --source-url (the public repository).
SAR_METADATA = {
    "Name": "pinrelay",
    "Description": "Shopify webhooks to the Pinterest Conversions API, each event sent exactly once.",
    "Author": "pinrelay",
    "SpdxLicenseId": "MIT",
    "Labels": ["shopify", "pinterest", "conversions-api", "webhooks"],
}


def fail(message: str) -> None:
    print(f"release: {message}", file=sys.stderr)
    sys.exit(1)


def version() -> str:
    """The release version: the CLI's, which the function crates share."""
    versions = {}
    for manifest in ["cli/Cargo.toml", *(f"functions/{f}/Cargo.toml" for f in FUNCTIONS)]:
        # The [package] table's own `version = "..."` line (tomllib is Python 3.11+ only).
        package = (ROOT / manifest).read_text().split("[package]", 1)[1].split("\n[", 1)[0]
        found = re.search(r'^version\s*=\s*"([^"]+)"', package, re.M)
        if not found:
            fail(f"{manifest} has no [package] version")
        versions[manifest] = found.group(1)
    if len(set(versions.values())) != 1:
        fail(f"the crates' versions differ, set one version for a release: {versions}")
    return versions["cli/Cargo.toml"]


def bundle_name(ver: str, function: str, arch: str) -> str:
    return f"pinrelay-{ver}-{function}-{arch}.zip"


def cli_name(ver: str, arch: str) -> str:
    return f"pinrelay-{ver}-{ARCHES[arch][1]}-linux"


# ---------------------------------------------------------------------------------- template


def yaml_rt():
    try:
        from ruamel.yaml import YAML
    except ImportError:
        fail("ruamel.yaml is missing: run `make tools` (scripts/requirements-test.txt) or use target/pyenv/bin/python")
    y = YAML()  # round-trip: keeps tags, comments, quotes and flow style
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def transform_template(text: str, ver: str, bucket: str, prefix: str, source_url: str | None) -> tuple[str, list[str]]:
    """dist/template.yaml from template.yaml, and the resource types SAR would refuse."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.comments import TaggedScalar

    y = yaml_rt()
    doc = y.load(text)

    params = doc["Parameters"]
    if "Architecture" not in params:
        fail("template.yaml has no Architecture parameter; the bundle keys need it")
    params["Architecture"]["Description"] = (
        "CPU architecture of the functions: the release has a bundle for each. arm64 (Graviton) is about "
        "20% cheaper per GB-second."
    )
    code_params = CommentedMap()
    code_params["CodeBucket"] = CommentedMap(
        Type="String",
        Default=bucket,
        AllowedPattern="^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        Description=(
            "S3 bucket holding the function bundles (pinrelay-<version>-<function>-<arch>.zip), in the "
            "stack's region."
        ),
    )
    code_params["CodeKeyPrefix"] = CommentedMap(
        Type="String",
        Default=prefix,
        AllowedPattern="^[^/].*[^/]$|^[^/]$",
        Description="Key prefix of the bundles in CodeBucket, without leading or trailing slash.",
    )
    # The code location first, then the template's own parameters.
    merged = CommentedMap()
    for k, v in list(code_params.items()) + list(params.items()):
        merged[k] = v
    doc["Parameters"] = merged

    groups = doc.get("Metadata", {}).get("AWS::CloudFormation::Interface", {}).get("ParameterGroups")
    if groups is not None:
        groups.insert(
            0,
            CommentedMap(
                Label=CommentedMap(default="Code (release bundles in S3)"),
                Parameters=CommentedSeq(["CodeBucket", "CodeKeyPrefix"]),
            ),
        )

    globals_fn = doc.get("Globals", {}).get("Function", {})
    globals_fn.pop("CodeUri", None)

    for function, logical_id in FUNCTIONS.items():
        res = doc["Resources"].get(logical_id)
        if res is None or res.get("Type") != "AWS::Serverless::Function":
            fail(f"template.yaml has no AWS::Serverless::Function {logical_id}")
        meta = res.get("Metadata")
        if meta is not None:
            meta.pop("BuildMethod", None)
            meta.pop("BuildProperties", None)
            if not meta:
                del res["Metadata"]
        ref = TaggedScalar("CodeBucket", style=None, tag="!Ref")
        key = TaggedScalar(
            "${CodeKeyPrefix}/" + bundle_name(ver, function, "${Architecture}"), style='"', tag="!Sub"
        )
        code = CommentedMap(Bucket=ref, Key=key)
        code.fa.set_flow_style()
        props = res["Properties"]
        # CodeUri first among the properties, where a reader looks for it.
        props.insert(0, "CodeUri", code)

    for logical_id, res in doc["Resources"].items():
        if isinstance(res.get("Metadata"), dict) and "BuildMethod" in res["Metadata"]:
            fail(f"{logical_id} still has Metadata.BuildMethod: sam deploy would try to build it")

    out = io.StringIO()
    y.dump(doc, out)
    result = out.getvalue()

    _, blocked = sar_check.check(result)
    if not blocked:
        if not source_url:
            fail("SAR accepts every resource type: give --source-url (the public repository) for its metadata")
        meta = doc.setdefault("Metadata", CommentedMap())
        sar = CommentedMap(SAR_METADATA)
        sar["SemanticVersion"] = ver
        sar["HomePageUrl"] = sar["SourceCodeUrl"] = source_url
        sar["ReadmeUrl"] = f"{source_url}/blob/v{ver}/README.md"
        sar["LicenseUrl"] = f"{source_url}/blob/v{ver}/Cargo.toml"
        meta["AWS::ServerlessRepo::Application"] = sar
        out = io.StringIO()
        y.dump(doc, out)
        result = out.getvalue()

    header = (
        f"# pinrelay {ver}, generated by scripts/release.py from template.yaml: the functions' code\n"
        "# comes from the release bundles in S3 (CodeBucket, CodeKeyPrefix, Architecture). Deploy with\n"
        "# sam deploy or aws cloudformation deploy (README, \"Deploy without Rust\"); do not sam build it.\n"
    )
    return header + result, blocked


def verify_template(text: str, ver: str, bucket: str, prefix: str) -> None:
    """The SAM translator expands each function to the S3 location of its bundle."""
    try:
        from samtranslator.translator.transform import transform
        from samtranslator.yaml_helper import yaml_parse
    except ImportError:
        print("release: aws-sam-translator is missing, the template's expansion is not checked", file=sys.stderr)
        return

    class NoManagedPolicies:
        def load(self):
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    doc = yaml_parse(text)
    for k in ("CodeBucket", "CodeKeyPrefix"):
        if doc["Parameters"][k].get("Default") != {"CodeBucket": bucket, "CodeKeyPrefix": prefix}[k]:
            fail(f"{k}'s default is not what was asked")
    expanded = transform(doc, {}, NoManagedPolicies())
    for function, logical_id in FUNCTIONS.items():
        code = expanded["Resources"][logical_id]["Properties"]["Code"]
        want = {
            "S3Bucket": {"Ref": "CodeBucket"},
            "S3Key": {"Fn::Sub": "${CodeKeyPrefix}/" + bundle_name(ver, function, "${Architecture}")},
        }
        if code != want:
            fail(f"{logical_id} expands to Code {code}, expected {want}")
        for arch in ARCHES:
            key = f"{prefix}/{bundle_name(ver, function, arch)}"
            if not re.fullmatch(r"[A-Za-z0-9!_.*'()/-]+", key):
                fail(f"S3 key {key!r} has characters that need encoding; choose a plainer --prefix")


def write_template(out: Path, ver: str, bucket: str, prefix: str, source_url: str | None = None) -> Path:
    text, blocked = transform_template((ROOT / "template.yaml").read_text(), ver, bucket, prefix, source_url)
    verify_template(text, ver, bucket, prefix)
    path = out / "template.yaml"
    path.write_text(text)
    if blocked:
        print(f"release: SAR metadata not added: {', '.join(blocked)} not on SAR's supported list ({sar_check.SOURCE_URL})")
    else:
        print("release: SAR metadata added (every resource type is on SAR's supported list)")
    return path


# ------------------------------------------------------------------------------------- build


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def check_tools(arches: list[str]) -> None:
    if shutil.which("cargo") is None:
        fail("cargo not found: install Rust with rustup (https://rustup.rs)")
    if subprocess.run(["cargo", "lambda", "--version"], capture_output=True).returncode != 0:
        fail("cargo-lambda not found: `pip install -r scripts/requirements-release.txt` (make release does it in target/pyenv-release)")
    has_zig = shutil.which("zig") is not None or (
        subprocess.run(["python3", "-m", "ziglang", "version"], capture_output=True).returncode == 0
    )
    if not has_zig:
        fail("zig not found (neither `zig` nor `python3 -m ziglang`): `pip install -r scripts/requirements-release.txt`")
    if shutil.which("rustup") is not None:
        installed = subprocess.run(
            ["rustup", "target", "list", "--installed"], capture_output=True, text=True, cwd=ROOT
        ).stdout.split()
        missing = [ARCHES[a][0] for a in arches if ARCHES[a][0] not in installed]
        if missing:
            fail(f"Rust target(s) missing: rustup target add {' '.join(missing)}")


def target_dir() -> Path:
    import cargo_target  # scripts/cargo_target.py

    return cargo_target.target_directory()


def elf_machine(path: Path) -> str:
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        fail(f"{path} is not an ELF executable")
    return {0x3E: "x86_64", 0xB7: "arm64"}.get(int.from_bytes(head[18:20], "little"), "unknown")


def build(package: str, binary: str, arch: str) -> Path:
    triple = ARCHES[arch][0]
    # cargo-lambda moves the binary to <lambda-dir>/<binary>/bootstrap: one lambda-dir per arch.
    lambda_dir = target_dir() / "lambda-release" / arch
    run([
        "cargo", "lambda", "build", "--release", "--target", f"{triple}.{GLIBC}",
        "--package", package, "--bin", binary, "--lambda-dir", str(lambda_dir),
    ])
    path = lambda_dir / binary / "bootstrap"
    if not path.is_file():
        fail(f"the build did not produce {path}")
    if elf_machine(path) != arch:
        fail(f"{path} is a {elf_machine(path)} binary, expected {arch}")
    return path


def write_zip(dest: Path, binary: Path) -> None:
    info = zipfile.ZipInfo("bootstrap", date_time=ZIP_DATE)
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    info.create_system = 3  # Unix, so the mode is honoured
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(dest, "w") as z:
        z.writestr(info, binary.read_bytes(), compresslevel=9)


def write_tar(dest: Path, folder: str, files: dict[str, tuple[Path, int]]) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dir_info = tarfile.TarInfo(folder)
        dir_info.type, dir_info.mode, dir_info.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(dir_info)
        for name, (src, mode) in files.items():
            data = src.read_bytes()
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release(args, ver: str) -> None:
    out = args.out
    check_tools(args.arch)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.monotonic()
    rows = []
    for arch in args.arch:
        for function in FUNCTIONS:
            t0 = time.monotonic()
            binary = build(function, function, arch)
            dest = out / bundle_name(ver, function, arch)
            write_zip(dest, binary)
            rows.append((dest.name, binary.stat().st_size, dest.stat().st_size, time.monotonic() - t0))
        t0 = time.monotonic()
        binary = build("pinrelay-cli", "pinrelay", arch)
        folder = cli_name(ver, arch)
        dest = out / f"{folder}.tar.gz"
        write_tar(dest, folder, {"pinrelay": (binary, 0o755), "README.md": (ROOT / "README.md", 0o644)})
        rows.append((dest.name, binary.stat().st_size, dest.stat().st_size, time.monotonic() - t0))
    write_template(out, ver, args.bucket, args.prefix, args.source_url)
    write_sums(out)
    (out / "release.json").write_text(
        json.dumps({"version": ver, "bucket": args.bucket, "prefix": args.prefix, "arches": args.arch}, indent=2) + "\n"
    )
    print(f"\n| file | binary | archive | build |\n|---|---|---|---|")
    for name, raw, packed, secs in rows:
        print(f"| {name} | {raw:,} bytes | {packed:,} bytes ({packed / 1048576:.2f} MiB) | {secs:.0f} s |")
    print(f"\nrelease {ver} in {out}/ after {time.monotonic() - started:.0f} s; upload with `make release-upload` (needs AWS credentials)")


def write_sums(out: Path) -> None:
    names = sorted(p.name for p in out.iterdir() if p.suffix in (".zip", ".gz", ".yaml"))
    (out / "SHA256SUMS").write_text("".join(f"{sha256(out / n)}  {n}\n" for n in names))


def upload(out: Path) -> None:
    manifest = out / "release.json"
    if not manifest.is_file():
        fail(f"{manifest} not found: run `make release BUCKET=...` first")
    meta = json.loads(manifest.read_text())
    if shutil.which("aws") is None:
        fail("the AWS CLI (aws) is not installed; see README, \"Deploy without Rust\", for the commands")
    dest = f"s3://{meta['bucket']}/{meta['prefix']}/"
    for name in sorted(p.name for p in out.iterdir() if p.suffix == ".zip") + ["template.yaml", "SHA256SUMS"]:
        run(["aws", "s3", "cp", str(out / name), dest + name])
    print(f"uploaded to {dest}; deploy with the commands in README, \"Deploy without Rust\"")


def main() -> None:
    # The SAM translator's "There are unpublished metrics" warning at exit.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring for details.")
    parser.add_argument("--bucket", help="S3 bucket the template's CodeBucket defaults to (required but for --upload)")
    parser.add_argument("--prefix", help="S3 key prefix of the bundles (default pinrelay/<version>)")
    parser.add_argument("--source-url", help="the public repository, for the SAR metadata (used only if SAR accepts the template)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument(
        "--arch", action="append", choices=sorted(ARCHES), help="Lambda architecture to build, repeatable (default both)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--template-only", action="store_true", help="write and check only template.yaml, build nothing")
    mode.add_argument("--upload", action="store_true", help="aws s3 cp the zips and template of --out to the bucket and prefix it was built for")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.arch = args.arch or list(ARCHES)

    if args.upload:
        upload(args.out)
        return
    if not args.bucket:
        parser.error("--bucket is required: the S3 bucket the bundles will be uploaded to (make release BUCKET=my-bucket)")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", args.bucket):
        parser.error(f"--bucket {args.bucket!r} is not an S3 bucket name")
    ver = version()
    args.prefix = (args.prefix or f"pinrelay/{ver}").strip("/")
    if not args.prefix:
        parser.error("--prefix is empty")

    if args.template_only:
        args.out.mkdir(parents=True, exist_ok=True)
        path = write_template(args.out, ver, args.bucket, args.prefix, args.source_url)
        print(f"release: {path} (template only)")
        return
    release(args, ver)


if __name__ == "__main__":
    main()

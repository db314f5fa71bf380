// The functions' code: `cargo lambda build --release` of the workspace, the build `sam build` runs
// (template.yaml, BuildMethod rust-cargolambda), staged as one CDK asset per function holding its
// `bootstrap`. Each function's package is built on its own (`--package`): one cargo invocation for
// both would unify the library's features, and ingest would link dispatch's DynamoDB adapter.
//
// With bundling skipped (`cdk synth --no-bundling`, or the context `aws:cdk:bundling-stacks: []`
// that the parity test sets) nothing is built and the source folder is not hashed: the assets get
// a placeholder hash, so synthesis needs neither Rust nor AWS credentials.

import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { AssetHashType, DockerImage } from "aws-cdk-lib";
import { Asset } from "aws-cdk-lib/aws-s3-assets";
import { Construct } from "constructs";

/** The CPU architectures the stack deploys to, as Lambda names them. */
export type Architecture = "arm64" | "x86_64";

/** The workspace root: infra/cdk/dist/lib/../../../.. once compiled. */
export const WORKSPACE_DIR = path.resolve(__dirname, "..", "..", "..", "..");

// One build per package and architecture per process.
const built = new Map<string, string>();

function cargoLambdaBuild(workspaceDir: string, pkg: string, architecture: Architecture): string {
  const key = `${workspaceDir}:${pkg}:${architecture}`;
  const done = built.get(key);
  if (done !== undefined) {
    return done;
  }
  const args = [
    "lambda",
    "build",
    "--release",
    architecture === "arm64" ? "--arm64" : "--x86-64",
    "--package",
    pkg,
  ];
  try {
    execFileSync("cargo", args, { cwd: workspaceDir, stdio: ["ignore", process.stderr, "inherit"] });
  } catch (e) {
    throw new Error(
      `cargo ${args.join(" ")} failed in ${workspaceDir}: install cargo-lambda and zig ` +
        `(pip install cargo-lambda ziglang) and, for arm64, the aarch64-unknown-linux-gnu Rust target (${e})`,
    );
  }
  const lambdaDir = path.join(workspaceDir, "target", "lambda");
  built.set(key, lambdaDir);
  return lambdaDir;
}

/** The asset of one function's `bootstrap`, built by cargo-lambda at synthesis time. */
export function bootstrapAsset(
  scope: Construct,
  id: string,
  binary: string,
  architecture: Architecture,
  workspaceDir: string,
): Asset {
  return new Asset(scope, id, {
    path: workspaceDir,
    // Hash what was built, not the workspace (target/ alone is gigabytes).
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Only used if local bundling declines, which it never does: it builds or throws.
      image: DockerImage.fromRegistry("scratch"),
      local: {
        tryBundle(outputDir: string): boolean {
          // The package and its binary share their name (functions/ingest, functions/dispatch, functions/watch).
          const lambdaDir = cargoLambdaBuild(workspaceDir, binary, architecture);
          fs.copyFileSync(path.join(lambdaDir, binary, "bootstrap"), path.join(outputDir, "bootstrap"));
          fs.chmodSync(path.join(outputDir, "bootstrap"), 0o755);
          return true;
        },
      },
    },
  });
}

#!/usr/bin/env node
// The CDK app: one PinrelayStack whose settings come from CDK context under template.yaml's
// parameter names, so `npx cdk deploy -c PinterestAdAccountId=123 -c OrderDelaySeconds=0` takes
// the same values as `sam deploy --parameter-overrides`. Unset ones keep the template's defaults.
//
// Context `StackName` (default `pinrelay`) names the stack; `SkipBundling=true` skips the Rust build.

import { App } from "aws-cdk-lib";
import { PINRELAY_DEFAULTS, PinrelaySettings, PinrelayStack } from "../lib/pinrelay-stack";

const app = new App();
// `-c SkipBundling=true`: synthesize without building the functions (assets get placeholder
// hashes), e.g. to read the template without Rust.
if (String(app.node.tryGetContext("SkipBundling")) === "true") {
  app.node.setContext("aws:cdk:bundling-stacks", []);
}

// The SAM parameter name of each setting: its name with the first letter capitalized, except the
// X-Ray one, whose CamelCase keeps both capitals.
function parameterName(setting: string): string {
  if (setting === "xRayTracing") return "XRayTracing";
  return setting[0].toUpperCase() + setting.slice(1);
}

const settings: Record<string, unknown> = {};
for (const [setting, fallback] of Object.entries({ ...PINRELAY_DEFAULTS, pinterestAdAccountId: "" })) {
  const raw: unknown = app.node.tryGetContext(parameterName(setting));
  if (raw === undefined) continue;
  const text = String(raw);
  if (typeof fallback === "number") {
    const n = Number(text);
    if (text.trim() === "" || Number.isNaN(n)) throw new Error(`context ${parameterName(setting)}=${text}: not a number`);
    settings[setting] = n;
  } else if (typeof fallback === "boolean") {
    if (text !== "true" && text !== "false") throw new Error(`context ${parameterName(setting)}=${text}: true or false`);
    settings[setting] = text === "true";
  } else {
    settings[setting] = text;
  }
}
if (settings.pinterestAdAccountId === undefined) {
  throw new Error("set the Pinterest ad account: npx cdk deploy -c PinterestAdAccountId=1234567890");
}

new PinrelayStack(app, String(app.node.tryGetContext("StackName") ?? "pinrelay"), {
  ...(settings as unknown as PinrelaySettings),
  analyticsReporting: false,
});

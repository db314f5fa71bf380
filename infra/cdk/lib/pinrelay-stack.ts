// PinrelayStack: the stack of template.yaml, written with the AWS CDK.
//
// Every SAM parameter is a prop with the same default (`PINRELAY_DEFAULTS`), every resource has the
// logical id it has in the SAM-transformed template, and `make cdk-parity` (infra/cdk/test/parity.py)
// compares the two CloudFormation documents resource by resource. A change to template.yaml needs
// the same change here, or that test fails.
//
// The resources are CloudFormation-level (L1) constructs on purpose: the higher-level ones add
// grants, policies and removal policies of their own, and parity with the SAM stack is the point.
// They are public, so an app embedding the stack can read names and ARNs or add to them.

import {
  Aws,
  CfnOutput,
  Stack,
  StackProps,
  aws_cloudwatch as cloudwatch,
  aws_dynamodb as dynamodb,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_scheduler as scheduler,
  aws_secretsmanager as secretsmanager,
  aws_sns as sns,
  aws_sqs as sqs,
} from "aws-cdk-lib";
import { Construct } from "constructs";
import { Architecture, WORKSPACE_DIR, bootstrapAsset } from "./bundle";

/** Lambda's application log levels that pinrelay's tracing filter understands too. */
export type ApplicationLogLevel = "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR";

/** The stack's settings: template.yaml's parameters, camelCased, with the same defaults. */
export interface PinrelaySettings {
  /** CPU of both functions (`Architecture`). */
  readonly architecture?: Architecture;
  /** ARN of an existing secret with the Shopify client secret; empty creates one (`ShopifyWebhookSecretArn`). */
  readonly shopifyWebhookSecretArn?: string;
  /** Comma-separated shop allow-list; empty accepts every verified shop (`ShopDomains`). */
  readonly shopDomains?: string;
  /** Seconds order webhooks wait in the queue, 0-900 (`OrderDelaySeconds`). */
  readonly orderDelaySeconds?: number;
  /** `opt_out` or `skip` for orders whose shopper refused marketing consent (`OrderConsentPolicy`). */
  readonly orderConsentPolicy?: "opt_out" | "skip";
  /** The numeric Pinterest ad account id (`PinterestAdAccountId`, required). */
  readonly pinterestAdAccountId: string;
  /** ARN of an existing secret with the Pinterest token; empty creates one (`PinterestAccessTokenSecretArn`). */
  readonly pinterestAccessTokenSecretArn?: string;
  /** Adds `?test=true` to every Pinterest request (`PinterestTestMode`). */
  readonly pinterestTestMode?: boolean;
  /** Pinterest API base URL (`PinterestApiUrl`). */
  readonly pinterestApiUrl?: string;
  /** The checkout `event_id`, with `{order_id}` or `{order_name}` (`EventIdTemplate`). */
  readonly eventIdTemplate?: string;
  /** `event_source_url`; empty uses `https://{shop}/` (`StoreUrl`). */
  readonly storeUrl?: string;
  /** Also send Shopify test orders (`IncludeTestOrders`). */
  readonly includeTestOrders?: boolean;
  /** Send point-of-sale orders as offline events (`SendPosOrders`). */
  readonly sendPosOrders?: boolean;
  /** Resend in-doubt events instead of dead-lettering them (`ResendInDoubt`). */
  readonly resendInDoubt?: boolean;
  /** Comma-separated order `source_name`s sent as storefront checkouts (`OrderSources`). */
  readonly orderSources?: string;
  /** ISO 3166-1 alpha-2 country of phones written without + or 00, or empty (`DefaultCountry`). */
  readonly defaultCountry?: string;
  /** Ingest executions reserved for (and at most allowed to) ingest; 0 reserves none (`IngestReservedConcurrency`). */
  readonly ingestReservedConcurrency?: number;
  /** When a purchase counts: `created` or `paid` (`CheckoutOn`). */
  readonly checkoutOn?: "created" | "paid";
  /** With `checkoutOn: "paid"`, the financial statuses that count as paid (`PaidStatuses`). */
  readonly paidStatuses?: string;
  /** `subtotal` or `total` (`ValueSource`). */
  readonly valueSource?: "subtotal" | "total";
  /** `variant`, `sku`, `product` or a template of `{variant_id}`, `{product_id}`, `{sku}`, `{country}` (`ContentId`). */
  readonly contentId?: string;
  /** The catalog feed's country, the `{country}` of a contentId template (`CatalogCountry`). */
  readonly catalogCountry?: string;
  /** The checkout's event_id: `order_id` or `shopify_event` beside Pinterest's app (`CheckoutEventId`). */
  readonly checkoutEventId?: "order_id" | "shopify_event";
  /** Most messages per dispatch invocation, 1-10000 (`DispatchBatchSize`). */
  readonly dispatchBatchSize?: number;
  /** Longest wait to fill a batch, 0-300 s (`DispatchBatchingWindowSeconds`). */
  readonly dispatchBatchingWindowSeconds?: number;
  /** Most concurrent dispatch invocations, 2-1000 (`DispatchMaxConcurrency`). */
  readonly dispatchMaxConcurrency?: number;
  /** Where alarms are mailed; empty notifies no one (`AlarmEmail`). */
  readonly alarmEmail?: string;
  /** Alarm when a webhook waits longer, at least 300 s (`OldestMessageAgeAlarmSeconds`). */
  readonly oldestMessageAgeAlarmSeconds?: number;
  /** Alarm when more than this % of sent events fail, 0-100 (`FailedEventRateAlarmPercent`). */
  readonly failedEventRateAlarmPercent?: number;
  /** Days the functions' logs are kept, a CloudWatch Logs retention value (`LogRetentionDays`). */
  readonly logRetentionDays?: number;
  /** Most detailed function log level kept (`ApplicationLogLevel`). */
  readonly applicationLogLevel?: ApplicationLogLevel;
  /** Trace every invocation with X-Ray (`XRayTracing`). */
  readonly xRayTracing?: boolean;
  /** ARN of an existing secret with Shopify Admin API credentials (a token, or a Dev Dashboard app's client id and secret as JSON); empty creates one (`WatchShopifyAdminTokenSecretArn`). */
  readonly watchShopifyAdminTokenSecretArn?: string;
  /** How often the watch runs, an EventBridge Scheduler rate or cron expression (`WatchSchedule`). */
  readonly watchSchedule?: string;
  /** Hours of orders each watch run checks, 1-168 (`WatchLookbackHours`). */
  readonly watchLookbackHours?: number;
  /** The customer lists kept in step with the consenting customers: "", "customers", "purchasers" or "customers,purchasers" (`AudienceLists`). */
  readonly audienceLists?: AudienceLists;
  /** Hours between two syncs of a store's customer lists, 1-168 (`AudienceSyncHours`). */
  readonly audienceSyncHours?: number;
}

/** The values of `AudienceLists`. */
export type AudienceLists = "" | "customers" | "purchasers" | "customers,purchasers";

/** Props of [`PinrelayStack`]: the settings plus the usual stack props. */
export interface PinrelayStackProps extends StackProps, PinrelaySettings {
  /** The cargo workspace to build the functions from; defaults to this repository's root. */
  readonly workspaceDir?: string;
}

/** The defaults of template.yaml's parameters (the parity test synthesizes with these). */
export const PINRELAY_DEFAULTS: Required<Omit<PinrelaySettings, "pinterestAdAccountId">> = {
  architecture: "arm64",
  shopifyWebhookSecretArn: "",
  shopDomains: "",
  orderDelaySeconds: 60,
  orderConsentPolicy: "opt_out",
  pinterestAccessTokenSecretArn: "",
  pinterestTestMode: false,
  pinterestApiUrl: "https://api.pinterest.com",
  eventIdTemplate: "{order_id}",
  storeUrl: "",
  includeTestOrders: false,
  sendPosOrders: false,
  resendInDoubt: false,
  orderSources: "web",
  defaultCountry: "",
  ingestReservedConcurrency: 0,
  checkoutOn: "created",
  paidStatuses: "paid,partially_paid,authorized,partially_refunded,refunded",
  valueSource: "subtotal",
  contentId: "variant",
  catalogCountry: "",
  checkoutEventId: "order_id",
  dispatchBatchSize: 100,
  dispatchBatchingWindowSeconds: 5,
  dispatchMaxConcurrency: 5,
  alarmEmail: "",
  oldestMessageAgeAlarmSeconds: 3600,
  failedEventRateAlarmPercent: 5,
  logRetentionDays: 30,
  applicationLogLevel: "INFO",
  xRayTracing: false,
  watchShopifyAdminTokenSecretArn: "",
  watchSchedule: "rate(1 hour)",
  watchLookbackHours: 6,
  audienceLists: "",
  audienceSyncHours: 24,
};

const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];
const SECRET_ARN = /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+)?$/;

/** The settings with defaults applied, checked like CloudFormation checks the parameters. */
export function resolveSettings(props: PinrelaySettings): Required<PinrelaySettings> {
  const s = { ...PINRELAY_DEFAULTS, ...stripUndefined(props) } as Required<PinrelaySettings>;
  const fail = (name: string, why: string): never => {
    throw new Error(`pinrelay: ${name} ${why}`);
  };
  const oneOf = (name: string, value: unknown, allowed: readonly unknown[]) => {
    if (!allowed.includes(value)) fail(name, `must be one of ${allowed.join(", ")}, not ${String(value)}`);
  };
  const range = (name: string, value: number, min: number, max: number) => {
    if (!Number.isInteger(value) || value < min || value > max) fail(name, `must be a whole number in ${min}-${max}, not ${value}`);
  };
  oneOf("architecture", s.architecture, ["arm64", "x86_64"]);
  if (!SECRET_ARN.test(s.shopifyWebhookSecretArn)) fail("shopifyWebhookSecretArn", "must be a Secrets Manager secret ARN or empty");
  range("orderDelaySeconds", s.orderDelaySeconds, 0, 900);
  if (!/^[0-9]+$/.test(s.pinterestAdAccountId ?? "")) fail("pinterestAdAccountId", "must be the numeric Pinterest ad account id");
  if (!SECRET_ARN.test(s.pinterestAccessTokenSecretArn)) fail("pinterestAccessTokenSecretArn", "must be a Secrets Manager secret ARN or empty");
  if (!/^https:\/\/[^/]+$/.test(s.pinterestApiUrl)) fail("pinterestApiUrl", "must be https://host, without a trailing slash");
  oneOf("orderConsentPolicy", s.orderConsentPolicy, ["opt_out", "skip"]);
  if (!/^.*\{order_(id|name)\}.*$/.test(s.eventIdTemplate)) fail("eventIdTemplate", "must contain {order_id} or {order_name}");
  oneOf("valueSource", s.valueSource, ["subtotal", "total"]);
  if (!/^(variant|sku|product|[^{}]*(\{(variant_id|product_id|sku|country)\}[^{}]*)+)$/.test(s.contentId))
    fail("contentId", "must be variant, sku, product or a template of {variant_id}, {product_id}, {sku} and {country}");
  if (!/^([A-Za-z]{2})?$/.test(s.catalogCountry)) fail("catalogCountry", "must be an ISO 3166-1 alpha-2 country or empty");
  oneOf("checkoutEventId", s.checkoutEventId, ["order_id", "shopify_event"]);
  oneOf("checkoutOn", s.checkoutOn, ["created", "paid"]);
  if (!/^(pending|authorized|partially_paid|paid|partially_refunded|refunded)(,(pending|authorized|partially_paid|paid|partially_refunded|refunded))*$/.test(s.paidStatuses))
    fail("paidStatuses", "must be comma-separated financial statuses (pending, authorized, partially_paid, paid, partially_refunded, refunded)");
  range("dispatchBatchSize", s.dispatchBatchSize, 1, 10000);
  range("dispatchBatchingWindowSeconds", s.dispatchBatchingWindowSeconds, 0, 300);
  range("dispatchMaxConcurrency", s.dispatchMaxConcurrency, 2, 1000);
  range("ingestReservedConcurrency", s.ingestReservedConcurrency, 0, 1000);
  if (!/^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/.test(s.orderSources)) fail("orderSources", "must be comma-separated source names");
  if (!/^([A-Za-z]{2})?$/.test(s.defaultCountry)) fail("defaultCountry", "must be an ISO 3166-1 alpha-2 code or empty");
  // template.yaml's rule BatchingWindowForLargeBatches.
  if (s.dispatchBatchSize > 10 && s.dispatchBatchingWindowSeconds === 0) {
    fail("dispatchBatchSize", "above 10 needs a dispatchBatchingWindowSeconds of at least 1 (an SQS event source rule)");
  }
  if (!/^([^@\s]+@[^@\s]+)?$/.test(s.alarmEmail)) fail("alarmEmail", "must be an e-mail address or empty");
  range("oldestMessageAgeAlarmSeconds", s.oldestMessageAgeAlarmSeconds, 300, Number.MAX_SAFE_INTEGER);
  if (!(s.failedEventRateAlarmPercent >= 0 && s.failedEventRateAlarmPercent <= 100)) fail("failedEventRateAlarmPercent", "must be in 0-100");
  oneOf("logRetentionDays", s.logRetentionDays, LOG_RETENTION_DAYS);
  oneOf("applicationLogLevel", s.applicationLogLevel, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]);
  if (!SECRET_ARN.test(s.watchShopifyAdminTokenSecretArn)) fail("watchShopifyAdminTokenSecretArn", "must be a Secrets Manager secret ARN or empty");
  if (!/^(rate|cron)\(.+\)$/.test(s.watchSchedule)) fail("watchSchedule", "must be a rate(...) or cron(...) expression");
  range("watchLookbackHours", s.watchLookbackHours, 1, 168);
  if (!["", "customers", "purchasers", "customers,purchasers"].includes(s.audienceLists))
    fail("audienceLists", 'must be "", "customers", "purchasers" or "customers,purchasers"');
  range("audienceSyncHours", s.audienceSyncHours, 1, 168);
  return s;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The stack of template.yaml: ingest behind a Function URL, the queues, dispatch, the table, secrets, alarms, dashboard. */
export class PinrelayStack extends Stack {
  /** The settings in force (props over defaults). */
  public readonly settings: Required<PinrelaySettings>;
  /** The Shopify secret, when the stack creates it. */
  public readonly shopifyWebhookSecret?: secretsmanager.CfnSecret;
  /** The Pinterest token secret, when the stack creates it. */
  public readonly pinterestAccessTokenSecret?: secretsmanager.CfnSecret;
  /** The watch's Shopify Admin API token secret, when the stack creates it. */
  public readonly shopifyAdminToken?: secretsmanager.CfnSecret;
  /** The queue between ingest and dispatch. */
  public readonly eventQueue: sqs.CfnQueue;
  /** Where undeliverable webhooks go, with their reason. */
  public readonly deadLetterQueue: sqs.CfnQueue;
  /** Idempotency records and shopper profiles. */
  public readonly idempotencyTable: dynamodb.CfnTable;
  /** The ingest function (Function URL). */
  public readonly ingestFunction: lambda.CfnFunction;
  /** The ingest Function URL. */
  public readonly ingestFunctionUrl: lambda.CfnUrl;
  /** The dispatch function (SQS event source). */
  public readonly dispatchFunction: lambda.CfnFunction;
  /** The watch function (hourly schedule). */
  public readonly watchFunction: lambda.CfnFunction;
  /** The watch's schedule. */
  public readonly watchSchedule: scheduler.CfnSchedule;
  /** The alarms, by logical id. */
  public readonly alarms: Record<string, cloudwatch.CfnAlarm> = {};
  /** The CloudWatch dashboard. */
  public readonly dashboard: cloudwatch.CfnDashboard;

  constructor(scope: Construct, id: string, props: PinrelayStackProps) {
    super(scope, id, {
      description:
        "pinrelay: Shopify webhooks to the Pinterest Conversions API. An ingest Lambda behind a " +
        "Function URL verifies each webhook and stores it in SQS; a dispatch Lambda sends each one to " +
        "Pinterest exactly once (DynamoDB idempotency), dead-lettering what cannot be sent, with its reason.",
      ...props,
    });
    const s = (this.settings = resolveSettings(props));
    const workspaceDir = props.workspaceDir ?? WORKSPACE_DIR;
    const flag = (b: boolean) => (b ? "true" : "false");

    // ------------------------------------------------------------ secrets
    if (s.shopifyWebhookSecretArn === "") {
      this.shopifyWebhookSecret = new secretsmanager.CfnSecret(this, "ShopifyWebhookSecret", {
        description:
          "pinrelay: the Shopify app's client secret (Partner Dashboard or Dev Dashboard, app, Settings, " +
          "Client secret). Set it with: aws secretsmanager put-secret-value --secret-id ARN --secret-string file:///dev/stdin (paste it, then Ctrl-D; it stays out of shell history). " +
          "During a rotation store a JSON array of the new and the old secret.",
      });
    }
    if (s.pinterestAccessTokenSecretArn === "") {
      this.pinterestAccessTokenSecret = new secretsmanager.CfnSecret(this, "PinterestAccessTokenSecret", {
        description:
          "pinrelay: the Pinterest conversion access token (Ads Manager, Conversions, Conversion access " +
          "token). Set it with: aws secretsmanager put-secret-value --secret-id ARN --secret-string file:///dev/stdin (paste it, then Ctrl-D; it stays out of shell history).",
      });
    }
    if (s.watchShopifyAdminTokenSecretArn === "") {
      this.shopifyAdminToken = new secretsmanager.CfnSecret(this, "ShopifyAdminToken", {
        description:
          "pinrelay: the Shopify Admin API credentials (read_orders) for the hourly watch: a custom app's " +
          "Admin API access token as a plain string, or a Dev Dashboard app's JSON {\"client_id\": \"...\", " +
          "\"client_secret\": \"...\"} (the watch mints 24-hour tokens from it and renews them). Set it with " +
          "pinrelay connect, or: aws secretsmanager put-secret-value --secret-id ARN --secret-string " +
          "file:///dev/stdin (paste it, then Ctrl-D; it stays out of shell history).",
      });
    }
    const shopifySecretArn = this.shopifyWebhookSecret?.ref ?? s.shopifyWebhookSecretArn;
    const adminTokenSecretArn = this.shopifyAdminToken?.ref ?? s.watchShopifyAdminTokenSecretArn;
    const pinterestSecretArn = this.pinterestAccessTokenSecret?.ref ?? s.pinterestAccessTokenSecretArn;

    // ------------------------------------------------------------ storage
    this.deadLetterQueue = new sqs.CfnQueue(this, "DeadLetterQueue", {
      sqsManagedSseEnabled: true,
      // 14 days, the SQS maximum: time to fix the cause and run `pinrelay replay`.
      messageRetentionPeriod: 1209600,
      // The size the SQS adapters enforce (pinrelay::queue::MAX_MESSAGE_BYTES).
      maximumMessageSize: 262144,
    });
    this.eventQueue = new sqs.CfnQueue(this, "EventQueue", {
      sqsManagedSseEnabled: true,
      // 6 x DispatchFunction's Timeout (30 s).
      // 6 x the dispatch timeout (30 s) + the largest batching window (300 s).
      visibilityTimeout: 480,
      // Pinterest accepts events up to 7 days old.
      messageRetentionPeriod: 604800,
      // The size the SQS adapters enforce (pinrelay::queue::MAX_MESSAGE_BYTES).
      maximumMessageSize: 262144,
      // pinrelay::dispatch::QUEUE_MAX_RECEIVES, above MAX_RECEIVE_COUNT of DispatchFunction.
      redrivePolicy: { deadLetterTargetArn: this.deadLetterQueue.attrArn, maxReceiveCount: 50 },
    });
    this.idempotencyTable = new dynamodb.CfnTable(this, "IdempotencyTable", {
      billingMode: "PAY_PER_REQUEST",
      attributeDefinitions: [{ attributeName: "id", attributeType: "S" }],
      keySchema: [{ attributeName: "id", keyType: "HASH" }],
      timeToLiveSpecification: { attributeName: "expires_at", enabled: true },
      sseSpecification: { sseEnabled: true },
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    });

    // ------------------------------------------------------------ shared function settings
    const tracing = s.xRayTracing ? "Active" : "PassThrough";
    const xray: object[] = s.xRayTracing
      ? [
          {
            Sid: "XRay",
            Effect: "Allow",
            Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            // X-Ray defines no resource ARNs for these actions.
            Resource: "*",
          },
        ]
      : [];
    const assumeRole = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
    };
    const loggingConfig = (logGroup: logs.CfnLogGroup): lambda.CfnFunction.LoggingConfigProperty => ({
      logGroup: logGroup.ref,
      logFormat: "JSON",
      // START/END/REPORT lines are INFO: not kept. Timeouts and crashes are WARN or above.
      systemLogLevel: "WARN",
      applicationLogLevel: s.applicationLogLevel,
    });
    const code = (id: string, binary: string): lambda.CfnFunction.CodeProperty => {
      const asset = bootstrapAsset(this, id, binary, s.architecture, workspaceDir);
      return { s3Bucket: asset.s3BucketName, s3Key: asset.s3ObjectKey };
    };

    // The registered stores' secrets (pinrelay shops --stack): one per store, under this prefix.
    const shopSecretsPrefix = `${Aws.STACK_NAME}/shops/`;
    const shopSecretsArn = `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${Aws.STACK_NAME}/shops/*`;

    // ------------------------------------------------------------ ingest
    const ingestLogGroup = new logs.CfnLogGroup(this, "IngestLogGroup", { retentionInDays: s.logRetentionDays });
    const ingestRole = new iam.CfnRole(this, "IngestRole", {
      description:
        "pinrelay ingest - write its logs (and traces), read the Shopify secret and the registered stores, send to the event queue.",
      assumeRolePolicyDocument: assumeRole,
      policies: [
        {
          policyName: "ingest",
          policyDocument: {
            Version: "2012-10-17",
            Statement: [
              { Sid: "Logs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: ingestLogGroup.attrArn },
              { Sid: "Enqueue", Effect: "Allow", Action: "sqs:SendMessage", Resource: this.eventQueue.attrArn },
              { Sid: "ShopifySecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: shopifySecretArn },
              // The registered stores' entries (shop#{domain} items; pinrelay shops --stack).
              { Sid: "ShopRegistry", Effect: "Allow", Action: "dynamodb:GetItem", Resource: this.idempotencyTable.attrArn },
              // Each registered store's secrets, read again only when its entry changes.
              { Sid: "ShopSecrets", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: shopSecretsArn },
              ...xray,
            ],
          },
        },
      ],
    });
    this.ingestFunction = new lambda.CfnFunction(this, "IngestFunction", {
      description: "pinrelay ingest - verifies Shopify webhooks (HMAC) and stores them in the event queue.",
      code: code("IngestCode", "ingest"),
      handler: "bootstrap",
      runtime: "provided.al2023",
      architectures: [s.architecture],
      role: ingestRole.attrArn,
      // Shopify waits 5 s for an answer; the enqueue has its own shorter budget.
      timeout: 10,
      reservedConcurrentExecutions: s.ingestReservedConcurrency > 0 ? s.ingestReservedConcurrency : undefined,
      memorySize: 128,
      tracingConfig: { mode: tracing },
      loggingConfig: loggingConfig(ingestLogGroup),
      environment: {
        variables: {
          QUEUE_URL: this.eventQueue.ref,
          SHOPIFY_WEBHOOK_SECRET_ARN: shopifySecretArn,
          SHOPIFY_SHOP_DOMAINS: s.shopDomains,
          ORDER_DELAY_SECONDS: String(s.orderDelaySeconds),
          IDEMPOTENCY_TABLE: this.idempotencyTable.ref,
          SHOP_SECRETS_PREFIX: shopSecretsPrefix,
          RUST_LOG: s.applicationLogLevel,
        },
      },
    });
    this.ingestFunctionUrl = new lambda.CfnUrl(this, "IngestFunctionUrl", {
      targetFunctionArn: this.ingestFunction.ref,
      // The webhook's HMAC is the authentication.
      authType: "NONE",
    });
    new lambda.CfnPermission(this, "IngestFunctionUrlPublicPermissions", {
      action: "lambda:InvokeFunctionUrl",
      functionName: this.ingestFunction.ref,
      principal: "*",
      functionUrlAuthType: "NONE",
    });
    new lambda.CfnPermission(this, "IngestFunctionURLInvokeAllowPublicAccess", {
      action: "lambda:InvokeFunction",
      functionName: this.ingestFunction.ref,
      principal: "*",
      invokedViaFunctionUrl: true,
    });

    // ------------------------------------------------------------ dispatch
    const dispatchLogGroup = new logs.CfnLogGroup(this, "DispatchLogGroup", { retentionInDays: s.logRetentionDays });
    const dispatchRole = new iam.CfnRole(this, "DispatchRole", {
      description:
        "pinrelay dispatch - consume the event queue, dead-letter, keep idempotency records, read the Pinterest token and the registered stores' tokens.",
      assumeRolePolicyDocument: assumeRole,
      policies: [
        {
          policyName: "dispatch",
          policyDocument: {
            Version: "2012-10-17",
            Statement: [
              { Sid: "Logs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: dispatchLogGroup.attrArn },
              {
                Sid: "ConsumeEventQueue",
                Effect: "Allow",
                Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                Resource: this.eventQueue.attrArn,
              },
              { Sid: "DeadLetter", Effect: "Allow", Action: "sqs:SendMessage", Resource: this.deadLetterQueue.attrArn },
              {
                Sid: "Idempotency",
                Effect: "Allow",
                Action: [
                  "dynamodb:GetItem",
                  "dynamodb:PutItem",
                  "dynamodb:UpdateItem",
                  "dynamodb:DeleteItem",
                  "dynamodb:Scan",
                  "dynamodb:BatchWriteItem",
                ],
                Resource: this.idempotencyTable.attrArn,
              },
              { Sid: "PinterestToken", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: pinterestSecretArn },
              // Each registered store's conversion token, read again only when its entry changes;
              // shop/redact deletes the store's secret with its entry.
              {
                Sid: "ShopSecrets",
                Effect: "Allow",
                Action: ["secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret"],
                Resource: shopSecretsArn,
              },
              ...xray,
            ],
          },
        },
      ],
    });
    this.dispatchFunction = new lambda.CfnFunction(this, "DispatchFunction", {
      description: "pinrelay dispatch - sends queued webhooks to the Pinterest Conversions API exactly once.",
      code: code("DispatchCode", "dispatch"),
      handler: "bootstrap",
      runtime: "provided.al2023",
      architectures: [s.architecture],
      role: dispatchRole.attrArn,
      // EventQueue's VisibilityTimeout is 6 x this.
      timeout: 30,
      memorySize: 256,
      tracingConfig: { mode: tracing },
      loggingConfig: loggingConfig(dispatchLogGroup),
      environment: {
        variables: {
          QUEUE_URL: this.eventQueue.ref,
          DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.ref,
          IDEMPOTENCY_TABLE: this.idempotencyTable.ref,
          SHOP_SECRETS_PREFIX: shopSecretsPrefix,
          MAX_RECEIVE_COUNT: "5",
          PINTEREST_API_URL: s.pinterestApiUrl,
          PINTEREST_AD_ACCOUNT_ID: s.pinterestAdAccountId,
          PINTEREST_ACCESS_TOKEN_SECRET_ARN: pinterestSecretArn,
          PINTEREST_TEST_MODE: flag(s.pinterestTestMode),
          EVENT_ID_TEMPLATE: s.eventIdTemplate,
          STORE_URL: s.storeUrl,
          INCLUDE_TEST_ORDERS: flag(s.includeTestOrders),
          SEND_POS_ORDERS: flag(s.sendPosOrders),
          RESEND_IN_DOUBT: flag(s.resendInDoubt),
          ORDER_SOURCES: s.orderSources,
          VALUE_SOURCE: s.valueSource,
          CONTENT_ID: s.contentId,
          CHECKOUT_ON: s.checkoutOn,
          PAID_STATUSES: s.paidStatuses,
          CHECKOUT_EVENT_ID: s.checkoutEventId,
          CATALOG_COUNTRY: s.catalogCountry,
          ORDER_CONSENT_POLICY: s.orderConsentPolicy,
          DEFAULT_COUNTRY: s.defaultCountry,
          RUST_LOG: s.applicationLogLevel,
        },
      },
    });
    new lambda.CfnEventSourceMapping(this, "DispatchFunctionQueue", {
      eventSourceArn: this.eventQueue.attrArn,
      functionName: this.dispatchFunction.ref,
      batchSize: s.dispatchBatchSize,
      maximumBatchingWindowInSeconds: s.dispatchBatchingWindowSeconds,
      functionResponseTypes: ["ReportBatchItemFailures"],
      scalingConfig: { maximumConcurrency: s.dispatchMaxConcurrency },
    });

    // ------------------------------------------------------------ watch
    const watchLogGroup = new logs.CfnLogGroup(this, "WatchLogGroup", { retentionInDays: s.logRetentionDays });
    const watchRole = new iam.CfnRole(this, "WatchRole", {
      description:
        "pinrelay watch - write its logs (and traces), read the Shopify Admin API token and the registered stores' secrets, read the outcome ledger, renew the stores' Pinterest sign-ins, keep the audience ledger.",
      assumeRolePolicyDocument: assumeRole,
      policies: [
        {
          policyName: "watch",
          policyDocument: {
            Version: "2012-10-17",
            Statement: [
              { Sid: "Logs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: watchLogGroup.attrArn },
              // Ledger lookups (shared/src/ledger/dynamodb.rs); the watch writes none of them.
              { Sid: "Ledger", Effect: "Allow", Action: ["dynamodb:GetItem", "dynamodb:BatchGetItem"], Resource: this.idempotencyTable.attrArn },
              { Sid: "AdminToken", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: adminTokenSecretArn },
              // Each registered store's Admin credentials (the registry's entries are read under Ledger),
              // and its Pinterest sign-in ({StackName}/shops/{domain}/pinterest-oauth).
              { Sid: "ShopSecrets", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: shopSecretsArn },
              // The watch is the refresher: it writes the renewed Pinterest sign-ins (rotated refresh
              // tokens) and nothing else. `pinrelay pinterest login` creates the secrets.
              {
                Sid: "PinterestSignInRenew",
                Effect: "Allow",
                Action: "secretsmanager:PutSecretValue",
                Resource: `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${Aws.STACK_NAME}/shops/*/pinterest-oauth-*`,
              },
              // The refresh lease (shared/src/pinterest/oauth/aws.rs): conditional updates of the
              // pinterest-oauth#{domain} items only.
              {
                Sid: "PinterestSignInLease",
                Effect: "Allow",
                Action: "dynamodb:UpdateItem",
                Resource: this.idempotencyTable.attrArn,
                Condition: { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["pinterest-oauth#*"] } },
              },
              // The audience job's record of each customer list (shared/src/audiences/dynamodb.rs):
              // the audience#{domain}#… items only.
              {
                Sid: "AudienceLedger",
                Effect: "Allow",
                Action: ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                Resource: this.idempotencyTable.attrArn,
                Condition: { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["audience#*"] } },
              },
              ...xray,
            ],
          },
        },
      ],
    });
    this.watchFunction = new lambda.CfnFunction(this, "WatchFunction", {
      description:
        "pinrelay watch - hourly, checks the store's webhook subscriptions and that recent orders reached the relay; every 15 minutes, the audience job.",
      code: code("WatchCode", "watch"),
      handler: "bootstrap",
      runtime: "provided.al2023",
      architectures: [s.architecture],
      role: watchRole.attrArn,
      // The hourly watch takes seconds (pages of orders plus the Admin API client's throttling
      // waits); the audience job uses up to the whole 15 minutes and stops a minute before,
      // leaving the rest of a long sync to its next run. 256 MB: a full comparison holds 268 bytes
      // a customer for one list at its peak (BENCHMARKS.md, Audiences), so a few hundred thousand
      // customers with both lists.
      timeout: 900,
      memorySize: 256,
      tracingConfig: { mode: tracing },
      loggingConfig: loggingConfig(watchLogGroup),
      environment: {
        variables: {
          SHOPIFY_SHOP_DOMAINS: s.shopDomains,
          WEBHOOK_URL: `${this.ingestFunctionUrl.attrFunctionUrl}webhooks/shopify`,
          IDEMPOTENCY_TABLE: this.idempotencyTable.ref,
          SHOPIFY_ADMIN_TOKEN_SECRET_ARN: adminTokenSecretArn,
          // The registered stores, each watched with its own Admin credentials.
          SHOP_SECRETS_PREFIX: shopSecretsPrefix,
          // The token endpoint that renews the stores' Pinterest sign-ins.
          PINTEREST_API_URL: s.pinterestApiUrl,
          SHOPIFY_API_VERSION: "2026-07",
          // The topics `pinrelay subscribe` creates for the stack's checkoutOn.
          WATCH_TOPICS:
            s.checkoutOn === "paid"
              ? "orders/create,orders/paid,customers/create"
              : "orders/create,customers/create",
          WATCH_LOOKBACK_HOURS: String(s.watchLookbackHours),
          VALUE_SOURCE: s.valueSource,
          // The conversion rules, so an order the relay never saw that they would skip is not missing.
          INCLUDE_TEST_ORDERS: flag(s.includeTestOrders),
          SEND_POS_ORDERS: flag(s.sendPosOrders),
          ORDER_SOURCES: s.orderSources,
          CHECKOUT_ON: s.checkoutOn,
          PAID_STATUSES: s.paidStatuses,
          // The rest of the stack's settings: what a registered store without its own inherits.
          PINTEREST_TEST_MODE: flag(s.pinterestTestMode),
          EVENT_ID_TEMPLATE: s.eventIdTemplate,
          STORE_URL: s.storeUrl,
          CONTENT_ID: s.contentId,
          CHECKOUT_EVENT_ID: s.checkoutEventId,
          CATALOG_COUNTRY: s.catalogCountry,
          ORDER_CONSENT_POLICY: s.orderConsentPolicy,
          DEFAULT_COUNTRY: s.defaultCountry,
          // The audience job ({"job": "audiences"}, AudienceSchedule).
          AUDIENCE_LISTS: s.audienceLists,
          AUDIENCE_SYNC_HOURS: String(s.audienceSyncHours),
          // Records a customer-list request carries: Pinterest publishes no limit, so at most 10,000.
          AUDIENCE_BATCH_SIZE: "10000",
          PINTEREST_AD_ACCOUNT_ID: s.pinterestAdAccountId,
          RUST_LOG: s.applicationLogLevel,
        },
      },
    });
    const watchSchedulerRole = new iam.CfnRole(this, "WatchSchedulerRole", {
      description: "pinrelay watch schedule - invoke the watch function.",
      assumeRolePolicyDocument: {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "scheduler.amazonaws.com" },
            Action: "sts:AssumeRole",
            Condition: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
          },
        ],
      },
      policies: [
        {
          policyName: "watch-schedule",
          policyDocument: {
            Version: "2012-10-17",
            Statement: [
              { Sid: "InvokeWatch", Effect: "Allow", Action: "lambda:InvokeFunction", Resource: this.watchFunction.attrArn },
            ],
          },
        },
      ],
    });
    this.watchSchedule = new scheduler.CfnSchedule(this, "WatchInvocationSchedule", {
      description: "pinrelay - runs the watch (webhook subscriptions, recent orders against the ledger).",
      scheduleExpression: s.watchSchedule,
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      target: { arn: this.watchFunction.attrArn, roleArn: watchSchedulerRole.attrArn, input: "{}" },
    });
    new scheduler.CfnSchedule(this, "AudienceSchedule", {
      description:
        "pinrelay - runs the audience job (customer lists of the stores with AUDIENCE_LISTS; each synced when AudienceSyncHours old).",
      scheduleExpression: "rate(15 minutes)",
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      target: {
        arn: this.watchFunction.attrArn,
        roleArn: watchSchedulerRole.attrArn,
        input: '{"job": "audiences"}',
        // A run that failed to start is not retried: the next comes 15 minutes later.
        retryPolicy: { maximumRetryAttempts: 0 },
      },
    });

    // ------------------------------------------------------------ alarms
    let notify: string[] | undefined;
    if (s.alarmEmail !== "") {
      const topic = new sns.CfnTopic(this, "AlarmTopic", {
        displayName: "pinrelay alarms",
        subscription: [{ protocol: "email", endpoint: s.alarmEmail }],
      });
      notify = [topic.ref];
    }
    const alarm = (id: string, props: cloudwatch.CfnAlarmProps) => {
      this.alarms[id] = new cloudwatch.CfnAlarm(this, id, {
        evaluationPeriods: 1,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "notBreaching",
        alarmActions: notify,
        okActions: notify,
        ...props,
      });
    };
    const ingest = this.ingestFunction.ref;
    const dispatch = this.dispatchFunction.ref;
    const fnDim = (name: string) => [{ name: "FunctionName", value: name }];
    const pinrelayDims = (fn: string, reason?: string) => [
      { name: "Function", value: fn },
      ...(reason ? [{ name: "Reason", value: reason }] : []),
    ];
    alarm("DeadLettersAlarm", {
      alarmDescription:
        "Webhooks are in the dead-letter queue, each with a dead-letter-reason attribute. Read them " +
        "(aws sqs receive-message --message-attribute-names All), fix the cause, then run " +
        "pinrelay replay --queue-url DLQ_URL --to EVENT_QUEUE_URL.",
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: [{ name: "QueueName", value: this.deadLetterQueue.attrQueueName }],
      statistic: "Maximum",
      period: 300,
      threshold: 0,
    });
    alarm("OldestMessageAlarm", {
      alarmDescription:
        "Webhooks wait in the event queue longer than the threshold: dispatch is failing (see its errors " +
        "and PinterestAuthFailures), throttled, or Pinterest is rate-limiting. Events sent over 1 hour " +
        "late count as offline at Pinterest.",
      namespace: "AWS/SQS",
      metricName: "ApproximateAgeOfOldestMessage",
      dimensions: [{ name: "QueueName", value: this.eventQueue.attrQueueName }],
      statistic: "Maximum",
      period: 300,
      threshold: s.oldestMessageAgeAlarmSeconds,
    });
    alarm("IngestErrorsAlarm", {
      alarmDescription:
        "The ingest function failed (usually at cold start: a missing variable or an unreadable Shopify " +
        "secret). Shopify retries a failed webhook 8 times over 4 hours, then deletes the subscription. " +
        "Read the function's log.",
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: fnDim(ingest),
      statistic: "Sum",
      period: 300,
      threshold: 0,
    });
    alarm("IngestThrottlesAlarm", {
      alarmDescription:
        "Ingest was throttled: Shopify got 429 and will retry. Raise the account's Lambda concurrency " +
        "quota if it persists.",
      namespace: "AWS/Lambda",
      metricName: "Throttles",
      dimensions: fnDim(ingest),
      statistic: "Sum",
      period: 300,
      threshold: 0,
    });
    alarm("IngestQueueUnavailableAlarm", {
      alarmDescription:
        "Ingest could not store webhooks in SQS and answered 503; Shopify retries them. Check the SQS " +
        "service health and the ingest role.",
      namespace: "pinrelay",
      metricName: "WebhooksRejected",
      dimensions: pinrelayDims(ingest, "queue_unavailable"),
      statistic: "Sum",
      period: 300,
      threshold: 0,
    });
    alarm("IngestBadSignaturesAlarm", {
      alarmDescription:
        "Many webhooks failed HMAC verification (answered 401). Usually the Shopify secret in Secrets " +
        "Manager is not the app's current client secret; after 8 failed retries Shopify deletes the " +
        "subscription. Fix the secret (a JSON array of new and old during a rotation).",
      namespace: "pinrelay",
      metricName: "WebhooksRejected",
      dimensions: pinrelayDims(ingest, "bad_signature"),
      statistic: "Sum",
      period: 900,
      threshold: 10,
    });
    alarm("DispatchErrorsAlarm", {
      alarmDescription:
        "The dispatch function failed a whole invocation (usually at cold start: a missing variable or " +
        "an unreadable Pinterest token secret). The batch is retried; read the function's log.",
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: fnDim(dispatch),
      statistic: "Sum",
      period: 300,
      threshold: 0,
    });
    alarm("DispatchThrottlesAlarm", {
      alarmDescription:
        "Dispatch was throttled (the account's concurrency is exhausted). Messages wait in the queue; " +
        "lower DispatchMaxConcurrency or raise the account quota.",
      namespace: "AWS/Lambda",
      metricName: "Throttles",
      dimensions: fnDim(dispatch),
      statistic: "Sum",
      period: 300,
      threshold: 0,
    });
    alarm("PinterestAuthFailuresAlarm", {
      alarmDescription:
        "Pinterest refused the access token (401/403). Events are kept and retried, then dead-lettered " +
        "after 5 receives. Put a valid conversion access token in the Pinterest secret, then replay the " +
        "dead-letter queue.",
      namespace: "pinrelay",
      metricName: "PinterestAuthFailures",
      dimensions: pinrelayDims(dispatch),
      statistic: "Sum",
      period: 300,
      threshold: 0,
    });
    alarm("ExpiredEventsAlarm", {
      alarmDescription:
        "Events older than Pinterest's 7 days that were never sent were skipped (EventsExpired): they " +
        "can no longer be sent. An outage (dispatch failing or throttled, the queue backed up) aged them " +
        "out; look at OldestMessageAlarm, DispatchErrorsAlarm and PinterestAuthFailures for the cause. " +
        "A late orders/paid of an order sent before is deduplicated, never counted here.",
      namespace: "pinrelay",
      metricName: "EventsExpired",
      dimensions: pinrelayDims(dispatch),
      statistic: "Sum",
      period: 3600,
      threshold: 0,
    });
    alarm("InDoubtAlarm", {
      alarmDescription:
        "An event went in doubt (EventsDeadLettered, Reason in_doubt): Pinterest gave no answer to " +
        "its request, or the relay stopped while it may have been sending it, so Pinterest may or " +
        "may not have it. It is in the dead-letter queue and never resent on its own. Look for its " +
        "order in Pinterest's Event History (or pinrelay reconcile, status in_doubt); if it is " +
        "missing there, run pinrelay replay --queue-url DLQ_URL --to EVENT_QUEUE_URL --in-doubt, " +
        "which sends each once. The alarm stays raised for a day after the last one.",
      namespace: "pinrelay",
      metricName: "EventsDeadLettered",
      dimensions: pinrelayDims(dispatch, "in_doubt"),
      statistic: "Sum",
      period: 3600,
      evaluationPeriods: 24,
      datapointsToAlarm: 1,
      threshold: 0,
    });
    const watch = this.watchFunction.ref;
    const webhookUrl = `${this.ingestFunctionUrl.attrFunctionUrl}webhooks/shopify`;
    alarm("WebhookSubscriptionsMissingAlarm", {
      alarmDescription:
        "A webhook subscription the relay needs is gone or delivers elsewhere (Shopify deletes one " +
        "after 8 failed deliveries over 4 hours): every later webhook of its topic is missing. The " +
        "watch log names the topic. Re-run `pinrelay subscribe --shop SHOP " +
        `--address ${webhookUrl}\`, then \`pinrelay reconcile ` +
        `--shop SHOP --stack ${Aws.STACK_NAME} --backfill\` for the orders missed meanwhile.`,
      namespace: "pinrelay",
      metricName: "WebhookSubscriptionsMissing",
      dimensions: pinrelayDims(watch),
      statistic: "Maximum",
      period: 3600,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
    });
    alarm("StoresPausedAlarm", {
      alarmDescription:
        "Pinterest refused a store's conversion token or ad account, or rate-limits it, within the " +
        "watch's lookback (StoresPaused, Sum: how many stores): the store's events wait, retried up " +
        "to 12 hours apart for Pinterest's 7 days, while other stores' flow. The watch log's " +
        "store_paused line names each store and why. Fix a registered store with `pinrelay shops " +
        `update SHOP --secrets --stack ${Aws.STACK_NAME}\`, the default store with ` +
        `PinterestAccessTokenSecret, then \`pinrelay doctor --stack ${Aws.STACK_NAME} --shop SHOP\`.`,
      namespace: "pinrelay",
      metricName: "StoresPaused",
      dimensions: pinrelayDims(watch),
      statistic: "Sum",
      period: 3600,
      evaluationPeriods: 1,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
    });
    alarm("AudienceSyncAlarm", {
      alarmDescription:
        "A store's customer-list sync failed in two audience job runs in a row " +
        "(AudienceSyncFailures, Maximum: how many stores): its Pinterest list is not kept in step, " +
        "and a customer who withdrew consent may still be on it. The watch log's audiences_failed " +
        "line names the store and the fix: usually a Pinterest sign-in to renew (`pinrelay " +
        `pinterest login --stack ${Aws.STACK_NAME} --shop SHOP\`), Admin credentials without ` +
        "read_customers, or Pinterest's rate limit. `pinrelay audiences sync --stack " +
        `${Aws.STACK_NAME} --shop SHOP\` runs it by hand and prints the error.`,
      namespace: "pinrelay",
      metricName: "AudienceSyncFailures",
      dimensions: pinrelayDims(watch),
      statistic: "Maximum",
      period: 900,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
    });
    alarm("MissingOrdersAlarm", {
      alarmDescription:
        "Recent orders have no trace in the relay in two hourly watch runs in a row (OrdersMissing): " +
        "their webhooks never arrived (a deleted subscription, an outage). The watch log lists each " +
        `order's id and name. Run \`pinrelay reconcile --shop SHOP --stack ${Aws.STACK_NAME}\` to see ` +
        "them, then the same with `--backfill` to send those inside Pinterest's 7 days through the " +
        "relay. If WebhookSubscriptionsMissingAlarm fires too, fix the subscriptions first.",
      namespace: "pinrelay",
      metricName: "OrdersMissing",
      dimensions: pinrelayDims(watch),
      statistic: "Maximum",
      period: 3600,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
    });
    alarm("WatchErrorsAlarm", {
      alarmDescription:
        "The hourly watch failed, so webhook subscriptions and recent orders went unchecked. Usually " +
        "the Shopify Admin API credentials in ShopifyAdminTokenSecret are empty, wrong (401, or " +
        "invalid_client for a client id and secret) or lack read_orders (403), or ShopDomains is empty. The watch log's error line says which; fix it " +
        "(aws secretsmanager put-secret-value), the next run checks again. Two failed runs in a row " +
        "page: a single network blip does not.",
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: fnDim(watch),
      statistic: "Sum",
      period: 3600,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      threshold: 0,
    });
    alarm("WatchHeartbeatAlarm", {
      alarmDescription:
        "The hourly watch has not reported for two hours (no OrdersChecked), so nothing checks the " +
        "subscriptions and orders: its schedule is disabled or deleted, or every run fails before it " +
        "reports (see WatchErrorsAlarm). Missing data counts as breaching: a watch that stopped " +
        "cannot look fine. Check the WatchSchedule and the watch log.",
      namespace: "pinrelay",
      metricName: "OrdersChecked",
      dimensions: pinrelayDims(watch),
      statistic: "SampleCount",
      period: 3600,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      threshold: 1,
      comparisonOperator: "LessThanThreshold",
      treatMissingData: "breaching",
    });
    const stat = (id: string, metricName: string): cloudwatch.CfnAlarm.MetricDataQueryProperty => ({
      id,
      returnData: false,
      metricStat: {
        metric: { namespace: "pinrelay", metricName, dimensions: pinrelayDims(dispatch) },
        period: 900,
        stat: "Sum",
      },
    });
    alarm("FailedEventRateAlarm", {
      alarmDescription:
        "Pinterest reported more than the threshold share of sent events as failed; they are " +
        "dead-lettered with Pinterest's error message as the reason. A mapping or catalog problem " +
        "(content ids, currency) is the usual cause.",
      metrics: [
        stat("failed", "EventsFailed"),
        stat("sent", "EventsSent"),
        {
          id: "rate",
          label: "Failed events (% of sent)",
          returnData: true,
          expression: "IF(sent > 0, 100 * FILL(failed, 0) / sent, 0)",
        },
      ],
      threshold: s.failedEventRateAlarmPercent,
    });

    // ------------------------------------------------------------ dashboard
    this.dashboard = new cloudwatch.CfnDashboard(this, "Dashboard", {
      dashboardName: `${Aws.STACK_NAME}-pinrelay`,
      dashboardBody: this.toJsonString(
        dashboardBody({
          region: Aws.REGION,
          ingest,
          dispatch,
          watch,
          ingestLogGroup: ingestLogGroup.ref,
          dispatchLogGroup: dispatchLogGroup.ref,
          watchLogGroup: watchLogGroup.ref,
          eventQueue: this.eventQueue.attrQueueName,
          deadLetterQueue: this.deadLetterQueue.attrQueueName,
        }),
      ),
    });

    // ------------------------------------------------------------ outputs
    // Construct ids differ from the resources' (two secrets share their name with an output); the
    // logical ids are template.yaml's.
    const output = (id: string, description: string, value: string) =>
      new CfnOutput(this, `${id}Output`, { description, value }).overrideLogicalId(id);
    output(
      "WebhookUrl",
      "Subscribe the store's webhooks to this URL (pinrelay subscribe --address, or infra/shopify.app.toml).",
      `${this.ingestFunctionUrl.attrFunctionUrl}webhooks/shopify`,
    );
    output("EventQueueName", "The queue between ingest and dispatch.", this.eventQueue.attrQueueName);
    output("EventQueueUrl", "The target of pinrelay replay --to.", this.eventQueue.ref);
    output(
      "DeadLetterQueueName",
      "Webhooks that could not be sent, each with a dead-letter-reason attribute.",
      this.deadLetterQueue.attrQueueName,
    );
    output("DeadLetterQueueUrl", "The source of pinrelay replay --queue-url.", this.deadLetterQueue.ref);
    output(
      "IdempotencyTableName",
      "DynamoDB table of sent-event records and, under order#, the storefront pixel's shopper profiles (click id, IP, user agent; expire after 30 days).",
      this.idempotencyTable.ref,
    );
    output(
      "ShopSecretsPrefix",
      "The name prefix of the registered stores' secrets, one per store (pinrelay shops add SHOP --stack NAME).",
      shopSecretsPrefix,
    );
    output(
      "ShopifyWebhookSecret",
      "The secret ARN the ingest function reads; put the Shopify client secret in it.",
      shopifySecretArn,
    );
    output(
      "PinterestAccessTokenSecret",
      "The secret ARN the dispatch function reads; put the Pinterest access token in it.",
      pinterestSecretArn,
    );
    output(
      "ShopifyAdminTokenSecret",
      "The secret ARN the watch function reads; put a Shopify Admin API access token with read_orders in it, or a Dev Dashboard app's {\"client_id\": \"...\", \"client_secret\": \"...\"}.",
      adminTokenSecretArn,
    );
    output(
      "DashboardUrl",
      "The CloudWatch dashboard.",
      `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards:name=${this.dashboard.ref}`,
    );
  }
}

interface DashboardRefs {
  region: string;
  ingest: string;
  dispatch: string;
  watch: string;
  ingestLogGroup: string;
  dispatchLogGroup: string;
  watchLogGroup: string;
  eventQueue: string;
  deadLetterQueue: string;
}

/** The dashboard of template.yaml as an object (tokens inside are resolved by `toJsonString`). */
function dashboardBody(r: DashboardRefs): object {
  const metric = (x: number, y: number, width: number, title: string, extra: object, metrics: unknown[]) => ({
    type: "metric",
    x,
    y,
    width,
    height: 6,
    properties: { title, region: r.region, view: "timeSeries", ...extra, metrics },
  });
  const log = (x: number, y: number, title: string, query: string) => ({
    type: "log",
    x,
    y,
    width: 8,
    height: 6,
    properties: { title, region: r.region, view: "table", query },
  });
  const sum = { stat: "Sum", period: 300 };
  return {
    start: "-PT24H",
    widgets: [
      metric(0, 0, 8, "Webhooks in", sum, [
        ["AWS/Lambda", "Invocations", "FunctionName", r.ingest, { label: "requests" }],
        ["AWS/SQS", "NumberOfMessagesSent", "QueueName", r.eventQueue, { label: "enqueued" }],
        ["pinrelay", "WebhooksRejected", "Function", r.ingest, "Reason", "bad_signature", { label: "bad signature (401)" }],
        ["pinrelay", "WebhooksRejected", "Function", r.ingest, "Reason", "queue_unavailable", { label: "queue unavailable (503)" }],
      ]),
      metric(8, 0, 8, "Events sent to Pinterest", sum, [
        ["pinrelay", "EventsSent", "Function", r.dispatch, { label: "sent" }],
        ["pinrelay", "EventsFailed", "Function", r.dispatch, { label: "failed" }],
        ["pinrelay", "PinterestAuthFailures", "Function", r.dispatch, { label: "Pinterest auth failures" }],
        ["pinrelay", "EventsExpired", "Function", r.dispatch, { label: "expired, never sent" }],
        ["pinrelay", "EventsDeadLettered", "Function", r.dispatch, "Reason", "in_doubt", { label: "in doubt (replay --in-doubt)" }],
      ]),
      log(
        16,
        0,
        "Outcomes by reason (dispatch log)",
        `SOURCE '${r.dispatchLogGroup}' | fields outcome, reason | filter ispresent(outcome) | stats count(*) as webhooks by outcome, reason | sort webhooks desc`,
      ),
      log(
        0,
        6,
        "Webhooks by outcome (ingest log)",
        `SOURCE '${r.ingestLogGroup}' | filter ispresent(outcome) | stats count(*) as webhooks by outcome, topic | sort webhooks desc`,
      ),
      metric(8, 6, 8, "Latency (ms)", { period: 300 }, [
        ["AWS/Lambda", "Duration", "FunctionName", r.ingest, { stat: "p50", label: "ingest duration p50" }],
        ["AWS/Lambda", "Duration", "FunctionName", r.ingest, { stat: "p99", label: "ingest duration p99" }],
        ["AWS/Lambda", "Duration", "FunctionName", r.dispatch, { stat: "p50", label: "dispatch duration p50" }],
        ["AWS/Lambda", "Duration", "FunctionName", r.dispatch, { stat: "p99", label: "dispatch duration p99" }],
      ]),
      log(
        16,
        6,
        "Match quality, % of sent events (dispatch metric lines)",
        `SOURCE '${r.dispatchLogGroup}' | filter ispresent(EventsSent) | stats sum(EventsSent) as sent, ` +
          "100 * sum(MatchEmail) / sum(EventsSent) as email, 100 * sum(MatchPhone) / sum(EventsSent) as phone, " +
          "100 * sum(MatchClickId) / sum(EventsSent) as click_id, 100 * sum(MatchIpUserAgent) / sum(EventsSent) as ip_user_agent, " +
          "100 * sum(MatchExternalId) / sum(EventsSent) as external_id, sum(OrdersEnriched) as enriched by bin(1d)",
      ),
      metric(0, 12, 12, "Queues", { stat: "Maximum", period: 300 }, [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", r.eventQueue, { label: "queued" }],
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", r.eventQueue, { label: "oldest (s)", yAxis: "right" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", r.deadLetterQueue, { label: "dead letters" }],
      ]),
      metric(12, 12, 12, "Functions", sum, [
        ["AWS/Lambda", "Invocations", "FunctionName", r.ingest, { label: "ingest invocations" }],
        ["AWS/Lambda", "Errors", "FunctionName", r.ingest, { label: "ingest errors" }],
        ["AWS/Lambda", "Throttles", "FunctionName", r.ingest, { label: "ingest throttles" }],
        ["AWS/Lambda", "Invocations", "FunctionName", r.dispatch, { label: "dispatch invocations" }],
        ["AWS/Lambda", "Errors", "FunctionName", r.dispatch, { label: "dispatch errors" }],
        ["AWS/Lambda", "Throttles", "FunctionName", r.dispatch, { label: "dispatch throttles" }],
      ]),
      metric(0, 18, 12, "Watch (hourly): subscriptions and orders", { stat: "Maximum", period: 3600 }, [
        ["pinrelay", "WebhookSubscriptionsMissing", "Function", r.watch, { label: "subscriptions missing" }],
        ["pinrelay", "OrdersMissing", "Function", r.watch, { label: "orders missing" }],
        ["pinrelay", "StoresPaused", "Function", r.watch, { label: "stores paused", stat: "Sum" }],
        ["pinrelay", "AudienceSyncFailures", "Function", r.watch, { label: "customer-list syncs failed" }],
        ["pinrelay", "OrdersChecked", "Function", r.watch, { label: "orders checked" }],
        ["pinrelay", "ReconcileAccuracy", "Function", r.watch, { label: "accuracy (%)", yAxis: "right" }],
        ["AWS/Lambda", "Errors", "FunctionName", r.watch, { label: "watch errors", stat: "Sum" }],
      ]),
      {
        ...log(
          12,
          18,
          "Missing orders and subscriptions (watch log)",
          `SOURCE '${r.watchLogGroup}' | filter outcome = 'order_missing' or outcome = 'subscription_missing' | ` +
            "fields @timestamp, outcome, topic, order_id, order_name | sort @timestamp desc | limit 100",
        ),
        width: 12,
      },
    ],
  };
}

#!/usr/bin/env python3
"""Can a template be published to the AWS Serverless Application Repository (SAR)?

SAR accepts only the resource types on its "List of Supported AWS Resources". This script lists a
template's resource types, both as written (`AWS::Serverless::Function`, ...) and as the SAM
transform expands them (`AWS::Lambda::Url`, `AWS::Lambda::EventSourceMapping`, ...: SAR deploys the
transformed stack), and prints the ones the list lacks. Exit 0 when every type is on the list, 1
when one is not (the template is not publishable), 2 on a usage error.

`scripts/release.py` calls `check()` and adds the `AWS::ServerlessRepo::Application` metadata to
dist/template.yaml only when it passes.

SAR_SUPPORTED is the one copy of the list, with its source:
- the page: https://docs.aws.amazon.com/serverlessrepo/latest/devguide/list-supported-resources.html
- transcribed from the last version of that page kept in source control: awsdocs/
  aws-serverlessrepo-developer-guide, doc_source/list-supported-resources.md, "Periodic doc update"
  of 2021-02-08 (commit 5e8664b); the repository was archived in 2023. The live page has grown
  since (it now begins with AWS::AccessAnalyzer::Analyzer and AWS::AmazonMQ::*), so a type missing
  here may have been added there: check the page before relying on a "not accepted", and add the
  type here, with the date you saw it, if it is there.

Usage: sar_check.py [TEMPLATE]   (default template.yaml)
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

SOURCE_URL = "https://docs.aws.amazon.com/serverlessrepo/latest/devguide/list-supported-resources.html"
SOURCE_VERSION = "awsdocs/aws-serverlessrepo-developer-guide@5e8664b (2021-02-08)"

SAR_SUPPORTED = frozenset(
    """
AWS::AccessAnalyzer::Analyzer
AWS::ApiGateway::ApiKey AWS::ApiGateway::Authorizer AWS::ApiGateway::BasePathMapping
AWS::ApiGateway::ClientCertificate AWS::ApiGateway::Deployment AWS::ApiGateway::DocumentationPart
AWS::ApiGateway::DocumentationVersion AWS::ApiGateway::DomainName AWS::ApiGateway::GatewayResponse
AWS::ApiGateway::Method AWS::ApiGateway::Model AWS::ApiGateway::RequestValidator
AWS::ApiGateway::Resource AWS::ApiGateway::RestApi AWS::ApiGateway::Stage AWS::ApiGateway::UsagePlan
AWS::ApiGateway::UsagePlanKey AWS::ApiGateway::VpcLink
AWS::ApiGatewayV2::Api AWS::ApiGatewayV2::ApiMapping AWS::ApiGatewayV2::Authorizer
AWS::ApiGatewayV2::DomainName AWS::ApiGatewayV2::Deployment AWS::ApiGatewayV2::Integration
AWS::ApiGatewayV2::IntegrationResponse AWS::ApiGatewayV2::Model AWS::ApiGatewayV2::Route
AWS::ApiGatewayV2::RouteResponse AWS::ApiGatewayV2::Stage
AWS::AppSync::ApiKey AWS::AppSync::DataSource AWS::AppSync::GraphQLApi AWS::AppSync::GraphQLSchema
AWS::AppSync::Resolver
AWS::ApplicationAutoScaling::ScalableTarget AWS::ApplicationAutoScaling::ScalingPolicy
AWS::Athena::NamedQuery
AWS::CertificateManager::Certificate
AWS::CloudFormation::CustomResource AWS::CloudFormation::Interface AWS::CloudFormation::Macro
AWS::CloudFormation::WaitConditionHandle
AWS::CloudFront::CloudFrontOriginAccessIdentity AWS::CloudFront::Distribution
AWS::CloudFront::StreamingDistribution
AWS::CloudTrail::Trail
AWS::CloudWatch::Alarm AWS::CloudWatch::AnomalyDetector AWS::CloudWatch::Dashboard
AWS::CloudWatch::InsightRule
AWS::CodeBuild::Project AWS::CodeCommit::Repository
AWS::CodePipeline::CustomActionType AWS::CodePipeline::Pipeline AWS::CodePipeline::Webhook
AWS::Cognito::IdentityPool AWS::Cognito::IdentityPoolRoleAttachment AWS::Cognito::UserPool
AWS::Cognito::UserPoolClient AWS::Cognito::UserPoolDomain AWS::Cognito::UserPoolGroup
AWS::Cognito::UserPoolResourceServer AWS::Cognito::UserPoolUser
AWS::Cognito::UserPoolUserToGroupAttachment
AWS::Config::AggregationAuthorization AWS::Config::ConfigRule AWS::Config::ConfigurationAggregator
AWS::Config::ConfigurationRecorder AWS::Config::DeliveryChannel AWS::Config::RemediationConfiguration
AWS::DataPipeline::Pipeline
AWS::DynamoDB::Table
AWS::EC2::SecurityGroup
AWS::ECR::Repository
AWS::Elasticsearch::Domain
AWS::Events::EventBusPolicy AWS::Events::Rule
AWS::EventSchemas::Discoverer AWS::EventSchemas::Registry AWS::EventSchemas::Schema
AWS::Glue::Classifier AWS::Glue::Connection AWS::Glue::Crawler AWS::Glue::Database
AWS::Glue::DevEndpoint AWS::Glue::Job AWS::Glue::Partition AWS::Glue::Table AWS::Glue::Trigger
AWS::IAM::Group AWS::IAM::InstanceProfile AWS::IAM::ManagedPolicy AWS::IAM::Policy AWS::IAM::Role
AWS::IoT::Certificate AWS::IoT::Policy AWS::IoT::PolicyPrincipalAttachment AWS::IoT::Thing
AWS::IoT::ThingPrincipalAttachment AWS::IoT::TopicRule
AWS::KMS::Alias AWS::KMS::Key
AWS::Kinesis::Stream AWS::Kinesis::StreamConsumer AWS::Kinesis::Streams
AWS::KinesisAnalytics::Application AWS::KinesisAnalytics::ApplicationOutput
AWS::KinesisFirehose::DeliveryStream
AWS::Lambda::Alias AWS::Lambda::EventInvokeConfig AWS::Lambda::EventSourceMapping
AWS::Lambda::Function AWS::Lambda::LayerVersion AWS::Lambda::LayerVersionPermission
AWS::Lambda::Permission AWS::Lambda::Version
AWS::Logs::Destination AWS::Logs::LogGroup AWS::Logs::LogStream AWS::Logs::MetricFilter
AWS::Logs::SubscriptionFilter
AWS::Route53::HealthCheck AWS::Route53::HostedZone AWS::Route53::RecordSet
AWS::Route53::RecordSetGroup
AWS::S3::Bucket AWS::S3::BucketPolicy
AWS::SNS::Subscription AWS::SNS::Topic AWS::SNS::TopicPolicy
AWS::SQS::Queue AWS::SQS::QueuePolicy
AWS::SSM::Association AWS::SSM::Document AWS::SSM::MaintenanceWindowTask AWS::SSM::Parameter
AWS::SSM::PatchBaseline AWS::SSM::ResourceDataSync
AWS::Serverless::Api AWS::Serverless::Application AWS::Serverless::Function AWS::Serverless::HttpApi
AWS::Serverless::LayerVersion AWS::Serverless::SimpleTable AWS::Serverless::StateMachine
AWS::StepFunctions::Activity AWS::StepFunctions::StateMachine
""".split()
)


def _placeholder_code(doc: dict) -> dict:
    """A copy the SAM translator accepts offline: every function's code an S3 location."""
    doc = copy.deepcopy(doc)
    doc.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for res in doc.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://sar-check/bootstrap.zip"
    return doc


def resource_types(template_text: str) -> tuple[set[str], set[str] | None]:
    """The types as written, and as the SAM transform expands them (None without aws-sam-translator)."""
    try:
        from samtranslator.translator.transform import transform
        from samtranslator.yaml_helper import yaml_parse
    except ImportError:
        import yaml  # PyYAML, without the CloudFormation tags: only the Type fields are read

        class Loader(yaml.SafeLoader):
            pass

        Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
        doc = yaml.load(template_text, Loader=Loader)
        return {r["Type"] for r in doc["Resources"].values()}, None

    doc = yaml_parse(template_text)
    written = {r["Type"] for r in doc["Resources"].values()}

    class NoManagedPolicies:
        def load(self):
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    expanded = transform(_placeholder_code(doc), {}, NoManagedPolicies())
    return written, {r["Type"] for r in expanded["Resources"].values()}


def check(template_text: str) -> tuple[list[str], list[str]]:
    """(every resource type the template uses, sorted; those SAR does not accept, sorted)."""
    written, expanded = resource_types(template_text)
    used = written | (expanded or set())
    return sorted(used), sorted(t for t in used if t not in SAR_SUPPORTED)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default="template.yaml", type=Path)
    args = parser.parse_args()
    if not args.template.is_file():
        parser.error(f"{args.template}: no such file")
    used, blocked = check(args.template.read_text())
    print(f"SAR supported-resource list: {SOURCE_URL}\n  as of {SOURCE_VERSION}")
    for t in used:
        print(f"  {'ok     ' if t not in blocked else 'MISSING'} {t}")
    if blocked:
        print(f"not publishable to SAR: {', '.join(blocked)} not on the list")
        return 1
    print("publishable to SAR: every resource type is on the list")
    return 0


if __name__ == "__main__":
    sys.exit(main())

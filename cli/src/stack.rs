//! A deployed pinrelay stack as the CLI reads it: its parameters and outputs, in one call.

use std::collections::HashMap;

use anyhow::Context as _;
use pinrelay::config::keys;

/// A stack's parameters and outputs, by name.
pub struct Stack {
    /// Parameter name and value.
    pub parameters: Vec<(String, String)>,
    /// Output name and value.
    pub outputs: Vec<(String, String)>,
}

/// The stack parameters the CLI reads, with the variable each sets in the functions.
const PARAMETER_VARIABLES: [(&str, &str); 10] = [
    ("IncludeTestOrders", keys::INCLUDE_TEST_ORDERS),
    ("SendPosOrders", keys::SEND_POS_ORDERS),
    ("OrderSources", keys::ORDER_SOURCES),
    ("ValueSource", keys::VALUE_SOURCE),
    ("CheckoutOn", keys::CHECKOUT_ON),
    ("PaidStatuses", keys::PAID_STATUSES),
    ("EventIdTemplate", keys::EVENT_ID_TEMPLATE),
    ("ContentId", keys::CONTENT_ID),
    ("CatalogCountry", keys::CATALOG_COUNTRY),
    ("CheckoutEventId", keys::CHECKOUT_EVENT_ID),
];

/// The variables of the conversion rules (reconcile and the watch judge orders by them).
pub const RULE_VARIABLES: [&str; 6] = [
    keys::INCLUDE_TEST_ORDERS,
    keys::SEND_POS_ORDERS,
    keys::ORDER_SOURCES,
    keys::VALUE_SOURCE,
    keys::CHECKOUT_ON,
    keys::PAID_STATUSES,
];

impl Stack {
    /// Reads stack `name` (DescribeStacks).
    ///
    /// # Errors
    /// The stack cannot be read: wrong name, region or credentials.
    pub async fn describe(sdk: &aws_config::SdkConfig, name: &str) -> anyhow::Result<Self> {
        let out = aws_sdk_cloudformation::Client::new(sdk)
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read stack {name} (check the stack name, AWS_REGION and credentials): {}",
                    aws_sdk_cloudformation::error::DisplayErrorContext(&e)
                )
            })?;
        let stack = out
            .stacks()
            .first()
            .with_context(|| format!("stack {name} not found"))?;
        Ok(Self {
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_owned(),
                        p.parameter_value()?.to_owned(),
                    ))
                })
                .collect(),
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect(),
        })
    }

    /// The stack's resources: logical id and physical id (a function's name, a topic's ARN, a log
    /// group's name). A resource a condition left out is absent.
    ///
    /// # Errors
    /// The stack's resources cannot be read.
    pub async fn resources(
        sdk: &aws_config::SdkConfig,
        name: &str,
    ) -> anyhow::Result<HashMap<String, String>> {
        let out = aws_sdk_cloudformation::Client::new(sdk)
            .describe_stack_resources()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the resources of stack {name}: {}",
                    aws_sdk_cloudformation::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(out
            .stack_resources()
            .iter()
            .filter_map(|r| {
                Some((
                    r.logical_resource_id()?.to_owned(),
                    r.physical_resource_id()?.to_owned(),
                ))
            })
            .collect())
    }

    /// An output's value.
    pub fn output(&self, name: &str) -> Option<String> {
        find(&self.outputs, name)
    }

    /// A parameter's value.
    pub fn parameter(&self, name: &str) -> Option<String> {
        find(&self.parameters, name)
    }

    /// `wanted` variables as the stack's parameters set them (absent when it has no such
    /// parameter).
    pub fn variables(&self, wanted: &[&str]) -> HashMap<String, String> {
        PARAMETER_VARIABLES
            .iter()
            .filter(|(_, variable)| wanted.contains(variable))
            .filter_map(|(parameter, variable)| {
                Some(((*variable).to_owned(), self.parameter(parameter)?))
            })
            .collect()
    }
}

fn find(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

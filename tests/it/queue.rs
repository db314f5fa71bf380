//! The `Queue`/`Inbox` contract ([`pinrelay::queue::contract`]) on SQS: [`SqsQueue`] and
//! [`SqsInbox`] on moto, consumed as the Lambda event source mapping would.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use pinrelay::queue::Received;
use pinrelay::queue::contract::{self, Harness};
use pinrelay::queue::sqs::{SqsInbox, SqsQueue, received_from_message};

use crate::helpers::TestEnv;

/// moto's queues, with the adapters under test.
struct Sqs {
    env: TestEnv,
    queue: SqsQueue,
    inbox: SqsInbox,
}

impl Sqs {
    async fn start() -> Self {
        let env = TestEnv::start().await;
        Self {
            queue: SqsQueue::new(env.sqs.clone(), &env.queue_url),
            inbox: SqsInbox::new(env.sqs.clone(), &env.queue_url, &env.dlq_url),
            env,
        }
    }

    async fn receive_from(&self, url: &str, visibility: Duration) -> Vec<Received> {
        let out = self
            .env
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap())
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        out.messages().iter().map(received_from_message).collect()
    }

    async fn delete_from(&self, url: &str, message: &Received) {
        self.env
            .sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(&message.receipt)
            .send()
            .await
            .unwrap();
    }
}

impl Harness for Sqs {
    type Queue = SqsQueue;
    type Inbox = SqsInbox;
    fn queue(&self) -> &SqsQueue {
        &self.queue
    }
    fn inbox(&self) -> &SqsInbox {
        &self.inbox
    }
    async fn receive(&self, visibility: Duration) -> Vec<Received> {
        self.receive_from(&self.env.queue_url, visibility).await
    }
    async fn delete(&self, message: &Received) {
        self.delete_from(&self.env.queue_url, message).await;
    }
    async fn dead_letters(&self) -> Vec<(String, HashMap<String, String>)> {
        let letters = self
            .receive_from(&self.env.dlq_url, Duration::from_secs(30))
            .await;
        for m in &letters {
            self.delete_from(&self.env.dlq_url, m).await;
        }
        letters
            .into_iter()
            .map(|m| (m.body, m.attributes))
            .collect()
    }
}

#[tokio::test]
async fn sqs_passes_the_queue_contract() {
    let sqs = Sqs::start().await;
    contract::a_sent_message_arrives_whole(&sqs).await;
    contract::a_compressed_body_round_trips(&sqs).await;
    contract::a_dead_letter_keeps_the_message_and_its_latest_reason(&sqs).await;
    contract::retry_after_sets_the_next_delivery(&sqs).await;
    contract::the_queues_limits_are_enforced_and_named(&sqs).await;
}

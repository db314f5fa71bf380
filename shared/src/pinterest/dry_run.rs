//! [`DryRun`]: a [`ConversionsApi`] that prints each request body instead of sending it.
//!
//! Used by `pinrelay serve` when no Pinterest credentials are configured. It reports every event as
//! processed, so the rest of the relay (dedup, completion) behaves exactly as with the real API.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::api::{ConversionsApi, ConversionsApiError, EventStatus};
use super::event::{Event, EventBatch};

/// Writes one JSON request body per line to a sink (stdout by default).
#[derive(Clone)]
pub struct DryRun {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl DryRun {
    /// Prints to standard output.
    pub fn stdout() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }

    /// Prints to any writer (tests use a buffer).
    pub fn to_writer(writer: Box<dyn Write + Send>) -> Self {
        Self {
            sink: Arc::new(Mutex::new(writer)),
        }
    }
}

impl ConversionsApi for DryRun {
    async fn send(&self, events: &[Event]) -> Result<Vec<EventStatus>, ConversionsApiError> {
        let body = serde_json::to_string(&EventBatch {
            data: events.to_vec(),
        })
        .map_err(|e| ConversionsApiError::Transport(Box::new(e)))?;
        // Nothing is sent in a dry run, so no failure here leaves an event in doubt.
        let mut sink = self
            .sink
            .lock()
            .map_err(|_| ConversionsApiError::Transport("the output lock is poisoned".into()))?;
        writeln!(sink, "{body}")
            .and_then(|()| sink.flush())
            .map_err(|e| ConversionsApiError::Transport(Box::new(e)))?;
        Ok(vec![EventStatus::Processed { warning: None }; events.len()])
    }
}

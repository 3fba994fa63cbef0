//! The seam between the scheduler and the actions: the scheduler hands a `Call` to a
//! `StepRunner` and gets a result or a `StepFailure` back. The real runner runs actions over
//! transports; scheduling tests use a double.

use super::record::StepFailure;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

/// One action (or check) to run, with everything rendered.
#[derive(Debug, Clone)]
pub struct Call {
    pub step_id: String,
    pub action: String,
    /// Rendered parameters, secrets included: never journal or print these.
    pub params: Value,
    pub role: String,
    pub become_user: Option<String>,
    pub timeout: Option<Duration>,
    /// The template context (for `wait.until`'s expectation).
    pub context: Value,
}

pub trait StepRunner: Send + Sync + 'static {
    /// Run the call to its end. Implementations must not be cancelled mid-command: the
    /// scheduler always awaits them.
    fn call(&self, call: Call) -> impl Future<Output = Result<Value, StepFailure>> + Send;
}

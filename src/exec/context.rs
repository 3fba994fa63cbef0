//! Values the executor renders templates with, and the secrets it must never let out.
//!
//! Secrets are read from the controller's environment or files when a run starts or
//! resumes; they are never stored in the run directory. Everything the executor journals or
//! prints goes through `Secrets::redact`, which replaces each secret's value with
//! `(sensitive)` wherever it appears.

use crate::check::BoundPlan;
use crate::plan::{Map, SecretSource};
use crate::template::SENSITIVE;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Map,
}

impl Secrets {
    /// Read every secret the site declares. A missing variable or file is an error naming it.
    pub fn resolve(bound: &BoundPlan) -> Result<Secrets, String> {
        let mut values = Map::new();
        for (name, source) in &bound.site.secrets {
            let value = match source {
                SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                    format!("secret `{name}`: environment variable {var} is not set")
                })?,
                SecretSource::File(path) => {
                    let full = bound.site_dir.join(path);
                    let text = std::fs::read_to_string(&full).map_err(|e| {
                        format!("secret `{name}`: cannot read {}: {e}", full.display())
                    })?;
                    text.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            values.insert(name.clone(), Value::String(value));
        }
        Ok(Secrets { values })
    }

    pub fn values(&self) -> &Map {
        &self.values
    }

    /// `s` with every secret value replaced by `(sensitive)`.
    pub fn redact_str(&self, s: &str) -> String {
        let mut out = s.to_string();
        for v in self.values.values() {
            if let Some(secret) = v.as_str().filter(|x| !x.is_empty()) {
                out = out.replace(secret, SENSITIVE);
            }
        }
        out
    }

    /// A value with every string redacted.
    pub fn redact(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact_str(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.redact(x)).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), self.redact(x))).collect())
            }
            other => other.clone(),
        }
    }
}

/// The run-time template context: the site's values, real secrets, and the results of the
/// steps that finished so far.
pub fn context(bound: &BoundPlan, secrets: &Secrets, results: &Map) -> Value {
    let mut ctx = bound.context(Some(secrets.values()));
    let steps: Map = results
        .iter()
        .map(|(id, r)| (id.clone(), serde_json::json!({ "result": r })))
        .collect();
    ctx["steps"] = Value::Object(steps);
    ctx
}

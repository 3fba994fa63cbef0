//! The preview: what `apply` will do, wave by wave, in text, JSON, DOT or Mermaid.
//!
//! Every format renders the same `PlanGraph` that `apply` runs; nothing here executes
//! anything. Values only known at run time show as `(known after apply)`, secrets as
//! `(sensitive)`.

mod graphviz;
mod json;
mod text;

pub use graphviz::{dot, mermaid};
pub use json::{Preview, preview_json};
pub use text::{count, text};

use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::PlanGraph;
use crate::template::{self, Form, KNOWN_AFTER_APPLY, SENSITIVE};
use serde_json::Value;

/// Render `with:` values for the preview; a template error becomes a located diagnostic.
pub fn preview_params(
    graph: &PlanGraph,
    pointer: &str,
    with: &Value,
    ctx: &Value,
    diags: &mut Diagnostics,
) -> Value {
    let env = template::shared();
    match with {
        Value::String(s) if template::is_template(s) => {
            let vars = template::variables(env, s, Form::Template).unwrap_or_default();
            if vars.iter().any(|p| p[0] == "steps" || p[0] == "result") {
                return Value::String(KNOWN_AFTER_APPLY.into());
            }
            if vars.iter().any(|p| p[0] == "secrets") {
                return Value::String(SENSITIVE.into());
            }
            match template::render_value(env, with, ctx) {
                Ok(v) => v,
                Err(e) => {
                    let doc = &graph.bound.valid.doc;
                    diags.push(
                        Diagnostic::new(
                            "drplan::template::render",
                            format!("cannot render template: {e}"),
                        )
                        .at(&doc.file, doc.value_span(pointer))
                        .label("fails with this site's values"),
                    );
                    Value::String(format!("(error: {e})"))
                }
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| preview_params(graph, &format!("{pointer}/{i}"), v, ctx, diags))
                .collect(),
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        preview_params(graph, &crate::load::child(pointer, k), v, ctx, diags),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

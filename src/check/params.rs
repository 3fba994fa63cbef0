//! Per-run parameter values (`--param NAME=VALUE`, `--params FILE`): checked against the
//! plan's `params` exactly like a site's values (type, `enum`), and laid over them. A run
//! records what it was given, so `resume` runs with the same values.

use super::site::fits;
use crate::diag::suggest;
use crate::plan::{BoundPlan, Map, ParamType};
use serde_json::Value;

/// Turn `NAME=VALUE` words into values typed by the plan's declarations: text for string
/// and duration parameters, YAML for the others (`5`, `true`, `[a, b]`).
pub fn parse_words(bound: &BoundPlan, words: &[String]) -> Result<Map, String> {
    let mut out = Map::new();
    for word in words {
        let Some((name, text)) = word.split_once('=') else {
            return Err(format!("--param takes NAME=VALUE, not `{word}`"));
        };
        let spec = bound
            .valid
            .plan
            .params
            .get(name)
            .ok_or_else(|| unknown(bound, name))?;
        let value = match spec.ty {
            ParamType::String | ParamType::Duration => Value::String(text.to_string()),
            _ => serde_saphyr::from_str::<Value>(text)
                .map_err(|e| format!("--param {name}: `{text}` is not a value: {e}"))?,
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// Lay `given` over the bound parameters; every name must be declared by the plan, and
/// every value must fit its type and `enum`. All problems at once, one line each.
pub fn apply(bound: &mut BoundPlan, given: &Map) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (name, value) in given {
        let Some(spec) = bound.valid.plan.params.get(name) else {
            problems.push(unknown(bound, name));
            continue;
        };
        if !fits(spec.ty, value) {
            problems.push(format!(
                "parameter `{name}` must be of type {}, found {value}",
                format!("{:?}", spec.ty).to_lowercase()
            ));
        } else if !spec.allows(value) {
            let shown = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let allowed: Vec<String> = spec
                .allowed
                .iter()
                .flatten()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            let hint = suggest(&shown, allowed.iter().map(String::as_str))
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            problems.push(format!(
                "parameter `{name}` must be one of {}, found {value}{hint}",
                spec.allowed_list()
            ));
        } else {
            bound.params.insert(name.clone(), value.clone());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn unknown(bound: &BoundPlan, name: &str) -> String {
    let plan = &bound.valid.plan;
    let hint = match suggest(name, plan.params.keys().map(String::as_str)) {
        Some(s) => format!(" ({s})"),
        None if plan.params.is_empty() => " (it declares none)".into(),
        None => format!(
            " (it declares {})",
            plan.params.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    format!("plan `{}` has no parameter `{name}`{hint}", plan.name)
}

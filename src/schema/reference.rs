//! `docs/actions.md`, generated from the action registry: each action's declaration and its
//! parameters as the JSON Schema describes them. `tests/schema.rs` fails when the committed
//! file differs from this; `UPDATE_DOCS=1 cargo test --test schema` rewrites it.

use super::{generator, strip_null};
use crate::actions::{self, About, ActionKind};
use serde_json::{Map, Value};
use std::fmt::Write;

/// The whole page.
pub fn actions_markdown() -> String {
    let mut g = generator();
    let entries: Vec<(&About, Value)> = actions::registry()
        .iter()
        .map(|a| (a.about(), a.params_schema(&mut g).to_value()))
        .collect();
    let mut defs = Value::Object(g.definitions().clone());
    strip_null(&mut defs);
    let mut out = String::from(HEADER);
    out.push_str("| action | kind | idempotent | what it does |\n| --- | --- | --- | --- |\n");
    for (about, _) in &entries {
        let _ = writeln!(
            out,
            "| [`{name}`](#{anchor}) | {kind} | {idempotent} | {summary} |",
            name = about.name,
            anchor = about.name.replace('.', ""),
            kind = kind(about),
            idempotent = yes_no(about.idempotent),
            summary = cell(about.summary),
        );
    }
    for (about, reference) in &entries {
        section(&mut out, about, reference, &defs);
    }
    out
}

const HEADER: &str = "# Actions

<!-- Generated from the action registry (src/actions) by `drplan::schema::actions_markdown`.
     Do not edit: `UPDATE_DOCS=1 cargo test --test schema` rewrites this file. -->

Every action a step (`action:`) or a rollback hook may run, and every check (`check:`) a
precondition, a checks file or `wait.until` may name. **Checks** only look; **changes**
change a host. An **idempotent** action looks first and does nothing when the work is already
done, so a step a crash left in doubt is run again on `resume`; any other needs the operator's
`resume --retry STEP` or `--skip STEP` (and its rollback hook, when in doubt, their word too).
A step's `timeout` bounds every command the action runs; without one the action's own time
budget applies.

Parameters are checked against each action's schema before a run starts (`drplan validate`;
`drplan schema plan` prints them all for editors). Any parameter that is not plain text may
also be written as one whole template (`port: \"{{ vars.pg.port }}\"`), which keeps the
expression's type.

";

fn section(out: &mut String, about: &About, reference: &Value, defs: &Value) {
    let _ = write!(
        out,
        "\n## `{}`\n\n{}\n\n- **Kind:** {}. **Idempotent:** {}. **Time budget** without a step `timeout`: {}.\n",
        about.name,
        sentence(about.summary),
        kind(about),
        yes_no(about.idempotent),
        crate::plan::Duration(about.budget),
    );
    for &key in about.role_params {
        let _ = writeln!(
            out,
            "- `{key}` names a role of the plan (checked like `on:`); that host is reached as its own login user."
        );
    }
    for &key in about.script_params {
        let _ = writeln!(
            out,
            "- Every `{{{{ … }}}}` in `{key}` must end in `| shell_quote` (see [plan-format.md](plan-format.md#exec-and--shell_quote))."
        );
    }
    if let Some(nested) = about.runs_check {
        let _ = writeln!(
            out,
            "- `{}` names a check it runs itself, with `{}` as that check's parameters; `{}` is an expression over the check's `result`.",
            nested.check, nested.with, nested.expect
        );
    }
    if about.asks_operator {
        out.push_str("- It asks the operator: a checks file and `wait.until` may not use it.\n");
    }
    if !about.login_params.is_empty() {
        let _ = writeln!(
            out,
            "- Without a `password`, it logs in with the site's `postgres.passwords` for its user ({}).",
            about
                .login_params
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(out, "- **Needs on the host:** {}", about.needs);
    let params = resolve(reference, defs);
    parameters(out, params, defs);
    let _ = writeln!(out, "\n**Result:** {}", about.result);
}

fn parameters(out: &mut String, params: &Value, defs: &Value) {
    let empty = Map::new();
    let props = params
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = params
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push('\n');
    if let Some(d) = params.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "Parameters (`with:`): {}\n", one_line(d));
    }
    if props.is_empty() {
        out.push_str("No parameters.\n");
        return;
    }
    out.push_str("| parameter | type | required | description |\n| --- | --- | --- | --- |\n");
    for (name, schema) in props {
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} |",
            cell(&type_of(schema, defs)),
            yes_no(required.contains(&name.as_str())),
            cell(&description),
        );
    }
}

/// A parameter's type in words: `string`, `list of string`, `duration`, one of an enum's
/// values.
fn type_of(schema: &Value, defs: &Value) -> String {
    if let Some(name) = super::def_name(schema) {
        let def = &defs[name];
        return match values(def) {
            Some(_) => type_of(def, defs),
            None => name.to_lowercase(),
        };
    }
    if let Some(values) = values(schema) {
        let words: Vec<String> = values.iter().map(|v| format!("`{}`", text(v))).collect();
        return format!("one of {}", words.join(", "));
    }
    if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
        let words: Vec<String> = alternatives.iter().map(|a| type_of(a, defs)).collect();
        return words.join(" or ");
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => format!("list of {}", type_of(&schema["items"], defs)),
        Some("object") => match schema.get("additionalProperties") {
            Some(v) if v.is_object() => format!("mapping to {}", type_of(v, defs)),
            _ => "mapping".to_owned(),
        },
        Some("string") => match schema.get("pattern").and_then(Value::as_str) {
            Some(p) => format!("string matching `{p}`"),
            None => "string".to_owned(),
        },
        Some(t) => t.to_owned(),
        None => "any".to_owned(),
    }
}

/// The values of an enum: `enum`, or a `oneOf` of `const`s (variants with their own docs).
fn values(schema: &Value) -> Option<Vec<Value>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.clone());
    }
    let variants = schema.get("oneOf").and_then(Value::as_array)?;
    variants.iter().map(|v| v.get("const").cloned()).collect()
}

/// The definition a `$ref` points to (or the schema itself).
fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    super::def_name(schema).map_or(schema, |name| &defs[name])
}

fn kind(about: &About) -> &'static str {
    match about.kind {
        ActionKind::Check => "check",
        ActionKind::Change => "change",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Doc comments keep their line breaks in the schema; a table cell cannot.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A summary as a sentence: with its full stop.
fn sentence(s: &str) -> String {
    if s.ends_with(['.', '?', '!']) {
        s.to_owned()
    } else {
        format!("{s}.")
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

//! Schema violations → located diagnostics with words an operator understands.

use crate::diag::{Diagnostics, suggest};
use crate::load::{Document, child};
use crate::plan::duration::DURATION_PATTERN;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

/// Check `value` (found at `base` in `doc`) against `validator`; one diagnostic per problem.
pub fn shape_diagnostics(
    doc: &Document,
    base: &str,
    value: &Value,
    validator: &jsonschema::Validator,
    schema: &Value,
    what: &str,
) -> Diagnostics {
    let mut out = Diagnostics::default();
    for e in validator.iter_errors(value) {
        let pointer = format!("{base}{}", e.instance_path().as_str());
        let found = describe(e.instance());
        let d = match e.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_keys(schema, e.schema_path().as_str());
                for key in unexpected {
                    let p = child(&pointer, key);
                    let mut d = doc
                        .error_at_key("drplan::schema::unknown_key", &p, format!("unknown key `{key}` in {}", place(doc, &pointer, what)))
                        .label("not a known key");
                    d = d.help_opt(suggest(key, allowed.iter().map(String::as_str)));
                    if d.help.is_none() && !allowed.is_empty() {
                        d = d.help(format!("known keys here: {}", allowed.join(", ")));
                    }
                    out.push(d);
                }
                continue;
            }
            ValidationErrorKind::Required { property } => {
                let key = property.as_str().unwrap_or_default();
                doc.error_at("drplan::schema::missing_key", &pointer, format!("missing required key `{key}` in {}", place(doc, &pointer, what)))
                    .label(format!("`{key}` is required here"))
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(ts) => ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
                };
                doc.error_at("drplan::schema::wrong_type", &pointer, format!("{} must be {}, found {found}", place(doc, &pointer, what), article(&expected)))
                    .label(format!("expected {expected}"))
            }
            ValidationErrorKind::Enum { options } => {
                let opts: Vec<String> = options.as_array().map(|a| a.iter().map(short).collect()).unwrap_or_default();
                let word = e.instance().as_str().unwrap_or_default().to_string();
                doc.error_at("drplan::schema::not_allowed", &pointer, format!("{} must be one of {}, found {found}", place(doc, &pointer, what), opts.join(", ")))
                    .label("not an allowed value")
                    .help_opt(suggest(&word, opts.iter().map(String::as_str)))
            }
            ValidationErrorKind::Constant { expected_value } => doc
                .error_at("drplan::schema::not_allowed", &pointer, format!("{} must be {}, found {found}", place(doc, &pointer, what), short(expected_value)))
                .label("not the allowed value"),
            ValidationErrorKind::Pattern { pattern } if pattern == DURATION_PATTERN => doc
                .error_at("drplan::schema::bad_duration", &pointer, format!("{} is not a duration: {found}", place(doc, &pointer, what)))
                .label("not a duration")
                .help("write a whole number and a unit: 500ms, 30s, 5m, 1h"),
            ValidationErrorKind::Pattern { pattern } if pattern == ID_PATTERN => {
                let given = e.instance().as_str().unwrap_or_default();
                doc.error_at("drplan::schema::bad_id", &pointer, format!("{} is not a valid step id", found.replacen("the string ", "", 1)))
                    .label("not a valid id")
                    .help(format!("ids are lowercase letters, digits, `-` and `_`, starting with a letter or digit, e.g. `{}`", slug(given)))
            }
            ValidationErrorKind::Pattern { pattern } => doc
                .error_at("drplan::schema::bad_format", &pointer, format!("{} {found} does not match the pattern {pattern}", place(doc, &pointer, what)))
                .label("wrong format"),
            ValidationErrorKind::AnyOf { .. } if !template_enum(schema, e.schema_path().as_str()).is_empty() => {
                let opts = template_enum(schema, e.schema_path().as_str());
                let word = e.instance().as_str().unwrap_or_default().to_string();
                doc.error_at("drplan::schema::not_allowed", &pointer, format!("{} must be one of {}, found {found}", place(doc, &pointer, what), opts.join(", ")))
                    .label("not an allowed value")
                    .help_opt(suggest(&word, opts.iter().map(String::as_str)))
            }
            ValidationErrorKind::AnyOf { .. } if is_templatable(schema, e.schema_path().as_str()) => doc
                .error_at("drplan::schema::wrong_type", &pointer, format!("{} has the wrong type or form: {found}", place(doc, &pointer, what)))
                .label("wrong type")
                .help("give a value of the parameter's type, or a `{{ template }}` string that renders to one"),
            ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::OneOfMultipleValid { .. }
                if e.schema_path().as_str().ends_with("/oneOf") =>
            {
                doc.error_at("drplan::schema::one_of", &pointer, format!("{} needs exactly one of its alternative keys", place(doc, &pointer, what)))
                    .label("give exactly one")
                    .help_opt(one_of_help(schema, e.schema_path().as_str()))
            }
            _ => doc.error_at("drplan::schema::invalid", &pointer, format!("{}: {e}", place(doc, &pointer, what))).label("invalid"),
        };
        out.push(d);
    }
    out
}

/// The properties a schema object allows, found from the path of its failing keyword.
fn allowed_keys(schema: &Value, keyword_path: &str) -> Vec<String> {
    let parent = keyword_path.rsplit_once('/').map_or("", |(p, _)| p);
    resolve(schema, parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn one_of_help(schema: &Value, keyword_path: &str) -> Option<String> {
    let alts = resolve(schema, keyword_path)?.as_array()?;
    let keys: Vec<String> = alts
        .iter()
        .filter_map(|a| {
            a.get("required")?
                .as_array()?
                .first()?
                .as_str()
                .map(|s| format!("`{s}`"))
        })
        .collect();
    (!keys.is_empty()).then(|| format!("give exactly one of {}", keys.join(" or ")))
}

fn is_templatable(schema: &Value, keyword_path: &str) -> bool {
    resolve(schema, keyword_path)
        .and_then(Value::as_array)
        .is_some_and(|alts| {
            alts.iter()
                .any(|a| a.get("$ref").and_then(Value::as_str) == Some("#/$defs/Template"))
        })
}

/// The pattern step ids must match (see `plan::Step::id`).
const ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]*$";

/// A likely valid id made from what the user wrote: `Stop GoCD primary` → `stop-gocd-primary`.
fn slug(given: &str) -> String {
    let mut out = String::new();
    for c in given.chars() {
        match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => out.push(c),
            _ if !out.ends_with('-') && !out.is_empty() => out.push('-'),
            _ => {}
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "stop-go-primary".into()
    } else {
        out
    }
}

/// The allowed values of an enum parameter that may also be a template (`anyOf[enum, Template]`).
fn template_enum(schema: &Value, keyword_path: &str) -> Vec<String> {
    let Some(alts) = resolve(schema, keyword_path).and_then(Value::as_array) else {
        return Vec::new();
    };
    if !is_templatable(schema, keyword_path) {
        return Vec::new();
    }
    let first = alts.first().map(|a| {
        match a
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        {
            Some(target) => schema.pointer(target).unwrap_or(a),
            None => a,
        }
    });
    let values = first
        .and_then(|f| f.get("enum").or_else(|| f.get("oneOf")))
        .and_then(Value::as_array);
    values
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.get("const").and_then(Value::as_str).map(str::to_string))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Follow a keyword path through a schema document, stepping through `$ref`s.
fn resolve<'a>(schema: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = schema;
    for token in path.split('/').filter(|t| !t.is_empty()) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token == "$ref" {
            let target = cur.get("$ref")?.as_str()?.strip_prefix('#')?;
            cur = schema.pointer(target)?;
            continue;
        }
        cur = match cur {
            Value::Object(o) => o.get(&token)?,
            Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// "step `promote`'s `with`", "the plan", … from a pointer.
/// How a message names the node at `pointer`: by step id where there is one
/// (`` `with.mode` of step `promote` ``), else by its path (`` `hosts.pg_primary` ``).
fn place(doc: &Document, pointer: &str, what: &str) -> String {
    if pointer.is_empty() {
        return format!("the {what}");
    }
    if let Some(rest) = pointer.strip_prefix("/steps/") {
        let (n, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let id = n
            .parse::<usize>()
            .ok()
            .and_then(|n| doc.value.get("steps")?.get(n)?.get("id")?.as_str());
        if let Some(id) = id {
            return if tail.is_empty() {
                format!("step `{id}`")
            } else {
                format!("`{}` of step `{id}`", dotted(&format!("/{tail}")))
            };
        }
    }
    format!("`{}`", dotted(pointer))
}

/// `/steps/2/with/unit` → `steps[2].with.unit`
pub(super) fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for t in pointer.split('/').skip(1) {
        let t = t.replace("~1", "/").replace("~0", "~");
        if t.parse::<usize>().is_ok() {
            out.push_str(&format!("[{t}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&t);
        }
    }
    out
}

fn article(t: &str) -> String {
    let a = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    match t {
        "null" => "null".into(),
        _ => format!("{a} {t}"),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", short(&Value::String(s.clone()))),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

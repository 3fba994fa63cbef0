//! JSON Schemas generated from the model, and checking documents against them.
//!
//! The model in `plan/` is the one source of truth: `schemas/*.schema.json` are this
//! module's output (a test fails when the committed files drift). Two flavours come from one
//! generator: the *published* schema adds each action's `with:` parameters (so editors
//! complete and flag them), while the loader checks the *core* shape first and each action's
//! parameters separately, which gives one precise message per mistake.

mod messages;
mod reference;

pub use messages::shape_diagnostics;
pub use reference::actions_markdown;

use crate::actions::{self, ActionKind};
use crate::plan::{Plan, Site};
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Which document a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plan,
    Site,
}

/// Accepted wherever a typed action parameter is expected: the value is rendered later.
const TEMPLATE_DEF: &str = "Template";

fn generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

/// `Option<T>` fields are optional keys, not nullable values: schemars marks them
/// nullable, which would turn a plain "wrong type" into a vague "matches no alternative".
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(types)) = o.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    o.insert("type".into(), t);
                }
            }
            if let Some(Value::Array(alts)) = o.get("anyOf") {
                let rest: Vec<Value> = alts
                    .iter()
                    .filter(|a| **a != json!({ "type": "null" }))
                    .cloned()
                    .collect();
                if rest.len() == 1 {
                    o.remove("anyOf");
                    if let Value::Object(inner) = &rest[0] {
                        for (k, val) in inner {
                            o.entry(k.clone()).or_insert(val.clone());
                        }
                    }
                }
            }
            o.values_mut().for_each(strip_null);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// The schema users see and editors use.
pub fn published(kind: Kind) -> Value {
    match kind {
        Kind::Plan => plan_schema(true),
        Kind::Site => site_schema(),
    }
}

/// The schema text exactly as committed in `schemas/`.
pub fn published_text(kind: Kind) -> String {
    // Serializing a Value cannot fail.
    let mut s = serde_json::to_string_pretty(&published(kind)).unwrap_or_default();
    s.push('\n');
    s
}

fn site_schema() -> Value {
    let mut g = generator();
    let mut root = g.root_schema_for::<Site>().to_value();
    strip_null(&mut root);
    set_id(&mut root, "site");
    root
}

fn set_id(root: &mut Value, name: &str) {
    if let Some(o) = root.as_object_mut() {
        o.insert(
            "$id".into(),
            json!(format!("https://drplan.dev/schemas/{name}.schema.json")),
        );
    }
}

/// The plan schema; with `actions`, each action's parameters are tied to its name.
fn plan_schema(with_actions: bool) -> Value {
    let mut g = generator();
    let mut params_refs = Vec::new();
    // The core shape does not look into `with:`: the actions' types only cost time there.
    for a in actions::registry().iter().filter(|_| with_actions) {
        params_refs.push((a.about(), a.params_schema(&mut g).to_value()));
    }
    let mut root = g.root_schema_for::<Plan>().to_value();
    strip_null(&mut root);
    set_id(&mut root, "plan");
    if !with_actions {
        return root;
    }
    let defs = root.get_mut("$defs").and_then(Value::as_object_mut);
    let Some(defs) = defs else { return root };
    // Once per parameter type, however many actions share it (the four `service.*`).
    let mut types: Vec<&str> = params_refs
        .iter()
        .filter_map(|(_, r)| def_name(r))
        .collect();
    types.sort_unstable();
    types.dedup();
    for name in types {
        if let Some(def) = defs.get_mut(name) {
            allow_templates(def);
        }
    }
    defs.insert(
        TEMPLATE_DEF.into(),
        json!({ "type": "string", "pattern": "\\{\\{|\\{%",
                "description": "A minijinja template, rendered before the action runs." }),
    );
    let conditional = |key: &str, only_checks: bool| -> Vec<Value> {
        params_refs
            .iter()
            .filter(|(a, _)| !only_checks || a.kind == ActionKind::Check)
            .map(|(a, r)| {
                json!({
                    "if": { "properties": { key: { "const": a.name } }, "required": [key] },
                    "then": { "properties": { "with": r } }
                })
            })
            .collect()
    };
    let all: Vec<&str> = actions::names().collect();
    let checks: Vec<&str> = actions::all()
        .filter(|a| a.kind == ActionKind::Check)
        .map(|a| a.name)
        .collect();
    let steps = conditional("action", false);
    let check_conds = conditional("check", true);
    for (def, key, names, conds) in [
        ("Step", "action", &all, &steps),
        ("Rollback", "action", &all, &steps),
        ("Check", "check", &checks, &check_conds),
    ] {
        if let Some(o) = defs.get_mut(def).and_then(Value::as_object_mut) {
            if let Some(p) = o
                .get_mut("properties")
                .and_then(|p| p.get_mut(key))
                .and_then(Value::as_object_mut)
            {
                p.insert("enum".into(), json!(names));
            }
            o.insert("allOf".into(), json!(conds));
        }
    }
    root
}

/// The name in `$defs` a `{"$ref": "#/$defs/NAME"}` points to.
fn def_name(reference: &Value) -> Option<&str> {
    reference
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix("#/$defs/"))
}

/// Let every non-string parameter also be written as a template (`port: "{{ vars.pg.port }}"`).
fn allow_templates(def: &mut Value) {
    let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (_, p) in props.iter_mut() {
        let plain_string = p.get("type") == Some(&json!("string")) && p.get("pattern").is_none();
        if !plain_string {
            let original = std::mem::take(p);
            let description = original.get("description").cloned();
            let mut wrapped =
                json!({ "anyOf": [original, { "$ref": format!("#/$defs/{TEMPLATE_DEF}") }] });
            if let (Some(d), Some(o)) = (description, wrapped.as_object_mut()) {
                o.insert("description".into(), d);
            }
            *p = wrapped;
        }
    }
}

/// An action's `with:` validator and the standalone schema it was compiled from.
type Compiled = (jsonschema::Validator, Value);

/// A compiled validator, made once per process.
pub struct Validators {
    pub plan: jsonschema::Validator,
    pub plan_doc: Value,
    pub site: jsonschema::Validator,
    pub site_doc: Value,
    /// the `$defs` every action's standalone schema carries, made when first needed
    defs: OnceLock<Value>,
    /// each action's `$ref` into `defs`, and its schema and validator once the action is
    /// first checked: making them all costs more than a small plan's whole validation
    params: HashMap<&'static str, (Value, OnceLock<Compiled>)>,
}

impl Validators {
    /// The validator of an action's `with:` and that standalone schema.
    pub fn params(&self, action: &str) -> Option<(&jsonschema::Validator, &Value)> {
        let (reference, made) = self.params.get(action)?;
        let (validator, doc) = made.get_or_init(|| {
            let defs = reachable_defs(self.defs(), &json!({ "$ref": reference }));
            let doc = json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": reference, "$defs": defs });
            (compile(&doc), doc)
        });
        Some((validator, doc))
    }

    fn defs(&self) -> &Value {
        self.defs
            .get_or_init(|| plan_schema(true).get("$defs").cloned().unwrap_or(json!({})))
    }
}

/// The definitions in `defs` that `from` reaches through `$ref`s: an action's parameters
/// need only their own types, and checking and compiling every action's made a one-step
/// plan's start-up twice as long.
fn reachable_defs(defs: &Value, from: &Value) -> Value {
    fn refs<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
        match v {
            Value::Object(o) => {
                if let Some(name) = def_name(v) {
                    out.push(name);
                }
                o.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut kept = serde_json::Map::new();
    let mut todo = Vec::new();
    refs(from, &mut todo);
    while let Some(name) = todo.pop() {
        if kept.contains_key(name) {
            continue;
        }
        if let Some(def) = defs.get(name) {
            kept.insert(name.to_owned(), def.clone());
            refs(def, &mut todo);
        }
    }
    Value::Object(kept)
}

/// Our own generated schemas always compile; a failure is a bug caught by tests.
fn compile(doc: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(doc)
        .unwrap_or_else(|e| panic!("generated schema does not compile: {e}"))
}

/// The validators (core plan shape, site, each action's parameters).
pub fn validators() -> &'static Validators {
    static V: OnceLock<Validators> = OnceLock::new();
    V.get_or_init(|| {
        let plan_doc = plan_schema(false);
        let site_doc = site_schema();
        let mut params = HashMap::new();
        let mut g = generator();
        for a in actions::registry() {
            let r = a.params_schema(&mut g).to_value();
            params.insert(a.about().name, (r["$ref"].clone(), OnceLock::new()));
        }
        Validators {
            plan: compile(&plan_doc),
            plan_doc,
            site: compile(&site_doc),
            site_doc,
            defs: OnceLock::new(),
            params,
        }
    })
}

//! Plan checking: the schema shape, then what a schema cannot say — unique ids, known
//! roles, known actions with fitting parameters, `needs` that exist and make no cycle,
//! templates that parse and read only what is in scope. All problems are collected.

pub mod params;
mod refs;
pub mod site;
mod unused;

pub use site::bind;
pub use unused::unused_site_values;

use crate::actions::{self, ActionKind};
use crate::diag::{Diagnostic, Diagnostics, suggest};
use crate::load::{Document, child};
use crate::plan::{Check, Dag, LOCAL_ROLE, ParamSpec, Plan, Step, ValidPlan};
use crate::schema::{self, shape_diagnostics};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Does the action of that name ask the operator (`manual.approve`)? A readiness report
/// cannot, so a checks file may not name it.
pub fn asks_operator(action: &str) -> bool {
    actions::lookup(action).is_some_and(|a| a.asks_operator)
}

/// Check a parsed plan document.
pub fn plan(doc: Document) -> Result<ValidPlan, Diagnostics> {
    if doc.value.is_null() {
        return Err(Diagnostics::from(
            doc.error_at("drplan::plan::empty", "", "the plan file is empty")
                .help("a plan starts with `version: 1`, `name:`, `roles:` and `steps:`"),
        ));
    }
    let v = schema::validators();
    let mut diags = shape_diagnostics(&doc, "", &doc.value, &v.plan, &v.plan_doc, "plan");
    // One typed reading serves the steps' checks and the result; only a plan with shape
    // errors has its steps read one by one, to check each that can be read.
    let typed = Plan::deserialize(&doc.value);
    let mut cx = Checker::new(&doc);
    cx.check_params();
    cx.check_steps(typed.as_ref().ok().map(|p| p.steps.as_slice()));
    cx.check_plan_preconditions();
    let (dag, index) = (cx.dag.take(), std::mem::take(&mut cx.index));
    diags.extend(cx.diags);
    if !diags.is_empty() {
        return Err(diags.sorted());
    }
    let plan = typed.map_err(|e| {
        Diagnostics::from(doc.error_at("drplan::schema::invalid", "", format!("invalid plan: {e}")))
    })?;
    let dag = dag.unwrap_or_else(|| Dag::new(&[]));
    Ok(ValidPlan {
        plan,
        doc,
        dag,
        index,
    })
}

struct Checker<'a> {
    doc: &'a Document,
    diags: Diagnostics,
    roles: Vec<String>,
    params: Vec<String>,
    index: HashMap<String, usize>,
    ids: Vec<Option<String>>,
    dag: Option<Dag>,
}

fn str_list(v: Option<&Value>) -> Vec<(usize, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, s.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl<'a> Checker<'a> {
    fn new(doc: &'a Document) -> Self {
        let mut cx = Checker {
            doc,
            diags: Diagnostics::default(),
            roles: Vec::new(),
            params: doc
                .value
                .get("params")
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
            index: HashMap::new(),
            ids: Vec::new(),
            dag: None,
        };
        for (i, role) in str_list(doc.value.get("roles")) {
            if cx.roles.contains(&role) {
                cx.push(
                    doc.error_at(
                        "drplan::plan::duplicate_role",
                        &format!("/roles/{i}"),
                        format!("role `{role}` is listed twice"),
                    )
                    .label("listed again"),
                );
            } else if role == LOCAL_ROLE {
                cx.push(
                    doc.error_at(
                        "drplan::plan::reserved_role",
                        &format!("/roles/{i}"),
                        "`local` is not a role to declare: it always means the controller",
                    )
                    .label("reserved name")
                    .help("remove it from `roles`; steps may use `on: local` without declaring it"),
                );
            } else {
                cx.roles.push(role);
            }
        }
        cx
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn raw_steps(&self) -> &'a [Value] {
        self.doc
            .value
            .get("steps")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// `typed`: the steps, when the whole plan could be read as one.
    fn check_steps(&mut self, typed: Option<&[Step]>) {
        let raw = self.raw_steps();
        // Ids first: `needs` and `steps.X` references resolve against all of them.
        for (i, s) in raw.iter().enumerate() {
            let id = s.get("id").and_then(Value::as_str).map(str::to_string);
            if let Some(id) = &id {
                if let Some(&first) = self.index.get(id) {
                    let (_, line, _) = self
                        .doc
                        .error_at("", &format!("/steps/{first}/id"), "")
                        .location()
                        .unwrap_or_default();
                    let d = self
                        .doc
                        .error_at(
                            "drplan::plan::duplicate_id",
                            &format!("/steps/{i}/id"),
                            format!("duplicate step id `{id}`"),
                        )
                        .label("used again here")
                        .help(format!(
                            "step ids must be unique; `{id}` is first used on line {line}"
                        ));
                    self.push(d);
                } else {
                    self.index.insert(id.clone(), i);
                }
            }
            self.ids.push(id);
        }
        let mut needs = vec![Vec::new(); raw.len()];
        for (i, s) in raw.iter().enumerate() {
            for (j, need) in str_list(s.get("needs")) {
                match self.index.get(&need) {
                    Some(&n) => needs[i].push(n),
                    None => {
                        let ids: Vec<&str> = self.index.keys().map(String::as_str).collect();
                        let d = self
                            .doc
                            .error_at(
                                "drplan::plan::unknown_need",
                                &format!("/steps/{i}/needs/{j}"),
                                format!(
                                    "step `{}` needs `{need}`, which is not a step of this plan",
                                    self.id(i)
                                ),
                            )
                            .label("no step has this id")
                            .help_opt(suggest(&need, ids));
                        self.push(d);
                    }
                }
            }
        }
        let dag = Dag::new(&needs);
        for cycle in dag.cycles() {
            let names: Vec<String> = cycle.iter().map(|&i| format!("`{}`", self.id(i))).collect();
            let first = cycle[0];
            let path = format!("{} → {}", names.join(" → "), names[0]);
            let d = self
                .doc
                .error_at_key(
                    "drplan::graph::cycle",
                    &format!("/steps/{first}/needs"),
                    format!("dependency cycle: {path}"),
                )
                .label("this step is part of a cycle")
                .help(
                    "a step cannot wait, even indirectly, for itself: remove one of these `needs`",
                );
            self.push(d);
        }
        self.dag = Some(dag);
        for (i, s) in raw.iter().enumerate() {
            // Steps with a shape error were reported already; check the rest in depth.
            if let Some(step) = typed.and_then(|t| t.get(i)) {
                self.check_step(i, step);
                continue;
            }
            match Step::deserialize(s) {
                Ok(step) => self.check_step(i, &step),
                Err(_) => self.check_raw_step(i, s),
            }
        }
    }

    fn id(&self, i: usize) -> String {
        self.ids
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_else(|| format!("#{}", i + 1))
    }

    fn check_step(&mut self, i: usize, step: &Step) {
        let base = format!("/steps/{i}");
        self.check_role(&child(&base, "on"), &step.on);
        self.check_action(&base, "action", &step.action, &step.with, false);
        if let Some(rb) = &step.rollback {
            let rb_base = child(&base, "rollback");
            if let Some(on) = &rb.on {
                self.check_role(&child(&rb_base, "on"), on);
            }
            self.check_action(&rb_base, "action", &rb.action, &rb.with, false);
        }
        for (j, c) in step.preconditions.iter().enumerate() {
            self.check_check(&format!("{base}/preconditions/{j}"), c);
        }
        refs::check_step_templates(self, i, step);
    }

    /// A step with a shape error still gets its role and action checked, so one run of
    /// `validate` reports every mistake.
    fn check_raw_step(&mut self, i: usize, s: &Value) {
        let base = format!("/steps/{i}");
        if let Some(on) = s.get("on").and_then(Value::as_str) {
            self.check_role(&child(&base, "on"), on);
        }
        if let Some(action) = s.get("action").and_then(Value::as_str) {
            let empty = serde_json::Map::new();
            let with = s.get("with").and_then(Value::as_object).unwrap_or(&empty);
            self.check_action(&base, "action", action, with, false);
        }
    }

    /// An `enum` holds values of the parameter's type, and the default is one of them.
    fn check_params(&mut self) {
        let Some(raw) = self.doc.value.get("params").and_then(Value::as_object) else {
            return;
        };
        for (name, spec) in raw {
            // Shape errors were reported by the schema.
            let Ok(spec) = ParamSpec::deserialize(spec) else {
                continue;
            };
            let base = child("/params", name);
            for (i, v) in spec.allowed.iter().flatten().enumerate() {
                if !site::fits(spec.ty, v) {
                    let d = self
                        .doc
                        .error_at(
                            "drplan::plan::param_type",
                            &format!("{base}/enum/{i}"),
                            format!(
                                "parameter `{name}` is of type {}, so {v} cannot be one of its values",
                                format!("{:?}", spec.ty).to_lowercase()
                            ),
                        )
                        .label("wrong type");
                    self.push(d);
                }
            }
            if let Some(default) = &spec.default
                && site::fits(spec.ty, default)
                && !spec.allows(default)
            {
                let d = site::not_allowed(
                    self.doc,
                    "drplan::plan::param_not_allowed",
                    &child(&base, "default"),
                    name,
                    &spec,
                    default,
                );
                self.push(d);
            }
        }
    }

    fn check_plan_preconditions(&mut self) {
        let raw = self
            .doc
            .value
            .get("preconditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (j, c) in raw.iter().enumerate() {
            if let Ok(c) = Check::deserialize(c) {
                let base = format!("/preconditions/{j}");
                self.check_check(&base, &c);
                refs::check_check_templates(self, &base, &c, None);
            }
        }
    }

    fn check_check(&mut self, base: &str, c: &Check) {
        self.check_role(&child(base, "on"), &c.on);
        self.check_action(base, "check", &c.check, &c.with, true);
    }

    fn check_role(&mut self, pointer: &str, role: &str) {
        if role == LOCAL_ROLE || self.roles.iter().any(|r| r == role) {
            return;
        }
        let known = self.roles.join(", ");
        let help = suggest(role, self.roles.iter().map(String::as_str)).unwrap_or_else(|| {
            format!("declare it in `roles:` (known: {known}), or use `local` for the controller")
        });
        let d = self
            .doc
            .error_at(
                "drplan::plan::unknown_role",
                pointer,
                format!("`{role}` is not a role of this plan"),
            )
            .label("not in `roles`")
            .help(help);
        self.push(d);
    }

    /// An action (or check) name and its `with:`; `base` is the object holding both.
    fn check_action(
        &mut self,
        base: &str,
        key: &str,
        name: &str,
        with: &serde_json::Map<String, Value>,
        must_be_check: bool,
    ) {
        let Some(spec) = actions::lookup(name) else {
            let help = suggest(name, actions::names())
                .unwrap_or_else(|| "`drplan schema plan` lists every action".to_string());
            let d = self
                .doc
                .error_at(
                    "drplan::plan::unknown_action",
                    &child(base, key),
                    format!("unknown action `{name}`"),
                )
                .label("not in the action catalogue")
                .help(help);
            self.push(d);
            return;
        };
        if must_be_check && spec.kind != ActionKind::Check {
            let checks = actions::all()
                .filter(|a| a.kind == ActionKind::Check)
                .map(|a| a.name);
            let d = self
                .doc
                .error_at(
                    "drplan::plan::not_a_check",
                    &child(base, key),
                    format!("`{name}` changes things, so it cannot be a check"),
                )
                .label("not a read-only check")
                .help(format!(
                    "checks are read-only: {}",
                    checks.collect::<Vec<_>>().join(", ")
                ));
            self.push(d);
            return;
        }
        let Some((validator, schema)) = schema::validators().params(name) else {
            return;
        };
        let with_ptr = child(base, "with");
        // The document's own object when `with` was read from it (no copy); else a copy.
        let value = match self.doc.value.pointer(&with_ptr) {
            Some(v @ Value::Object(o)) if o == with => Cow::Borrowed(v),
            _ => Cow::Owned(Value::Object(with.clone())),
        };
        let found = shape_diagnostics(
            self.doc,
            &with_ptr,
            &value,
            validator,
            schema,
            &format!("`{name}` parameters"),
        );
        self.diags.extend(found);
        // Names of roles inside parameters (file.copy's `from`) must be roles too.
        for &key in spec.role_params {
            if let Some(Value::String(role)) = with.get(key)
                && !crate::template::is_template(role)
            {
                self.check_role(&child(&with_ptr, key), role);
            }
        }
        // A check the action runs itself (`wait.until`'s) is checked as one.
        if let Some(nested) = spec.runs_check
            && let (Some(Value::String(inner)), inner_with) = (
                with.get(nested.check),
                with.get(nested.with).and_then(Value::as_object),
            )
        {
            let empty = serde_json::Map::new();
            self.check_action(
                &with_ptr,
                nested.check,
                inner,
                inner_with.unwrap_or(&empty),
                true,
            );
        }
    }
}

//! Values the executor renders templates with, and the secrets it must never let out.
//!
//! Secrets are read from the controller's environment or files when a run starts or
//! resumes; they are never stored in the run directory. Everything the executor journals or
//! prints goes through `Secrets::redact`, which replaces each secret's value with
//! `(sensitive)` wherever it appears — in the forms `redact::Redactor` knows, and in every
//! string a template derived from a secret (`Secrets::render` learns those).

use crate::graph::PlanGraph;
use crate::plan::BoundPlan;
use crate::plan::{Map, SecretSource};
use crate::redact::Redactor;
use crate::template;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Map,
    /// Shared by the clones (and handed to the actions): what is learnt while rendering is
    /// masked everywhere from then on.
    redactor: Redactor,
}

impl Secrets {
    /// Read every secret the plan may use: those its templates name, and the site's
    /// PostgreSQL passwords when one of its actions may read them. A site serves several
    /// plans, so a secret this plan never reads is not required. A missing variable or file
    /// is an error naming it.
    pub fn resolve(graph: &PlanGraph) -> Result<Secrets, String> {
        let bound = &graph.bound;
        // The plan's text is needed only when the site has secrets to look for.
        let plan = std::cell::OnceCell::new();
        let named = |name: &str| {
            let plan =
                plan.get_or_init(|| serde_json::to_string(&bound.valid.plan).unwrap_or_default());
            plan.contains(&format!("secrets.{name}"))
                || plan.contains(&format!("secrets['{name}']"))
        };
        let postgres = bound
            .site
            .password_secrets(graph.site_password_users().as_ref());
        let mut values = Map::new();
        for (name, source) in &bound.site.secrets {
            if !named(name) && !postgres.contains(&name) {
                continue;
            }
            let value = match source {
                SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                    format!("secret `{name}`: environment variable {var} is not set")
                })?,
                SecretSource::File(path) => {
                    let full = bound.site_dir.join(path);
                    let text = crate::load::read_text(&full)
                        .map_err(|e| format!("secret `{name}`: {e}"))?;
                    text.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            values.insert(name.clone(), Value::String(value));
        }
        Ok(Secrets::from_values(values))
    }

    /// Secrets with these values (name → string).
    pub fn from_values(values: Map) -> Secrets {
        let redactor = Redactor::new();
        for v in values.values() {
            if let Some(s) = v.as_str() {
                redactor.add(s);
            }
        }
        Secrets { values, redactor }
    }

    pub fn values(&self) -> &Map {
        &self.values
    }

    /// Nothing to mask yet (no secret was read, and nothing derived from one): redacting
    /// anything now returns it unchanged.
    pub fn masks_nothing(&self) -> bool {
        self.redactor.is_empty()
    }

    /// What masks the secrets, shared with whoever prints on the run's behalf.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Render the templates in `with` against `ctx`, learning every string they derive
    /// from a secret (so that it is masked like the secret itself).
    pub fn render(&self, with: &Value, ctx: &Value) -> Result<Value, minijinja::Error> {
        let env = template::shared();
        let rendered = template::render_value(env, with, ctx)?;
        for derived in template::secret_renderings(env, with, ctx) {
            self.redactor.add(&derived);
        }
        Ok(rendered)
    }

    /// `s` with every secret value (in every form, and everything derived from one)
    /// replaced by `(sensitive)`.
    pub fn redact_str(&self, s: &str) -> String {
        self.redactor.redact(s)
    }

    /// A journal record or an event with every secret redacted, except the fields that
    /// say what the record *is* (its kind, step id, outcome, time…): drplan and the plan
    /// choose those, never a host, and a short secret that happens to be part of a word like
    /// `step_started` must not make the record unreadable.
    pub fn redact_record(&self, v: &Value) -> Value {
        const STRUCTURE: &[&str] = &[
            "kind", "event", "step", "at", "attempt", "outcome", "reason", "decision", "end",
            "status", "rollback",
        ];
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| {
                        let kept = match x {
                            _ if STRUCTURE.contains(&k.as_str()) => x.clone(),
                            Value::Object(_) if k == "error" => self.redact_record(x),
                            _ => self.redact(x),
                        };
                        (k.clone(), kept)
                    })
                    .collect(),
            ),
            other => self.redact(other),
        }
    }

    /// A record or event with its secrets redacted (see `redact_record`). None only if it
    /// cannot make the round trip through JSON (a bug).
    pub fn redact_as<T: serde::Serialize + serde::de::DeserializeOwned>(&self, t: &T) -> Option<T> {
        let v = serde_json::to_value(t).ok()?;
        serde_json::from_value(self.redact_record(&v)).ok()
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

/// Whose results a step's templates may read. A step gets a context of its own, with the
/// results of these steps only: a context holding every result so far, copied for every
/// step, made a big plan quadratic.
#[derive(Debug, Clone, PartialEq)]
pub enum Reads {
    /// The steps (indices) whose ids appear as words in the step's templates and
    /// expressions: a superset of those it reads (`check` allows only `steps.ID` and
    /// `steps['ID']`, and only of steps it waits for).
    These(Vec<usize>),
    /// A template reads `steps` some other way: every result.
    All,
}

impl Reads {
    /// What each step of `graph` reads: its `with`, `when`, preconditions and rollback hook.
    pub fn of_plan(graph: &PlanGraph) -> Vec<Reads> {
        let doc = &graph.bound.valid.doc.value;
        let index = &graph.bound.valid.index;
        (0..graph.steps().len())
            .map(|i| {
                let mut these = std::collections::BTreeSet::new();
                let mut all = false;
                crate::template::walk_templates(&doc["steps"][i], "", &mut |_, text, _| {
                    all |= step_words(text, |word| {
                        these.extend(index.get(word));
                    });
                });
                if all {
                    Reads::All
                } else {
                    Reads::These(these.into_iter().collect())
                }
            })
            .collect()
    }
}

/// Call `f` with every word (`[A-Za-z0-9_-]+`) of a template's text; true if it reads
/// `steps` other than as `steps.ID` or `steps['ID']` (a step id taken from a variable, say).
fn step_words(text: &str, mut f: impl FnMut(&str)) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut dynamic = false;
    let mut rest = text;
    while let Some(start) = rest.find(is_word) {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !is_word(c)).unwrap_or(tail.len());
        let (word, after) = tail.split_at(end);
        if word == "steps" {
            dynamic |=
                !(after.starts_with('.') || after.starts_with("['") || after.starts_with("[\""));
        }
        f(word);
        rest = after;
    }
    dynamic
}

/// Render, with the real secrets, every template that does not wait for a step's result,
/// and ask `fits` (the action's own check) about each `with:` known whole by then: a run that
/// would stop half-way on a template it could have rendered, or on parameters its action
/// refuses, never starts. Returns what failed, redacted, one line each.
pub fn render_ahead(
    graph: &PlanGraph,
    secrets: &Secrets,
    fits: &dyn Fn(&str, &Value) -> Result<(), String>,
) -> Vec<String> {
    let ctx = context(&graph.bound, secrets, &Map::new());
    let mut problems = Vec::new();
    let mut ahead = |what: String, action: &str, with: &Map| {
        let mut whole = Some(Map::new());
        for (key, value) in with {
            if waits_for_steps(value) {
                whole = None;
                continue;
            }
            match secrets.render(value, &ctx) {
                Ok(v) => {
                    if let Some(w) = whole.as_mut() {
                        w.insert(key.clone(), v);
                    }
                }
                Err(e) => {
                    whole = None;
                    problems.push(secrets.redact_str(&format!("{what}, `{key}`: {e}")));
                }
            }
        }
        if let Some(Err(e)) = whole.map(|w| fits(action, &Value::Object(w))) {
            problems.push(secrets.redact_str(&format!("{what}: {e}")));
        }
    };
    for check in &graph.bound.valid.plan.preconditions {
        ahead(
            format!("precondition `{}`", check.name),
            &check.check,
            &check.with,
        );
    }
    for step in graph.steps() {
        ahead(format!("step `{}`", step.id), &step.action, &step.with);
        for check in &step.preconditions {
            ahead(
                format!("step `{}`, precondition `{}`", step.id, check.name),
                &check.check,
                &check.with,
            );
        }
        if let Some(rb) = &step.rollback {
            ahead(
                format!("rollback of step `{}`", step.id),
                &rb.action,
                &rb.with,
            );
        }
    }
    problems
}

/// Does any template in `v` read `steps.…` or `result` (known only while the run goes)?
fn waits_for_steps(v: &Value) -> bool {
    match v {
        Value::String(s) if template::is_template(s) => {
            template::variables(template::shared(), s, template::Form::Template)
                .map(|vars| {
                    vars.iter()
                        .any(|p| matches!(p.first().map(String::as_str), Some("steps" | "result")))
                })
                // Unparsable: let rendering report it.
                .unwrap_or(false)
        }
        Value::Array(items) => items.iter().any(waits_for_steps),
        Value::Object(o) => o.values().any(waits_for_steps),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::record::Record;
    use crate::step::{FailureKind, Outcome, StepFailure};

    #[test]
    fn a_step_reads_the_results_its_templates_name() {
        let words = |text: &str| {
            let mut seen = Vec::new();
            let dynamic = step_words(text, |w| seen.push(w.to_owned()));
            (seen, dynamic)
        };
        let (seen, dynamic) =
            words("{{ steps['check-lag'].result.lsn }} on {{ steps.a_1.result }}");
        assert!(seen.contains(&"check-lag".to_owned()) && seen.contains(&"a_1".to_owned()));
        assert!(!dynamic);
        assert!(!words("steps[\"b\"].result is defined").1);
        // A step id taken from a variable: no telling which, so every result.
        assert!(words("{{ steps[params.which].result }}").1);
        assert!(words("{{ steps | length }}").1);
        assert!(
            !words("{{ vars.steps_dir }}").1,
            "a word that only starts like it"
        );
    }

    #[test]
    fn a_short_secret_never_makes_a_record_unreadable() {
        let mut values = Map::new();
        values.insert("pw".into(), Value::String("ta".into()));
        let secrets = Secrets::from_values(values);
        let rec = Record::StepFinished {
            step: "start-tasks".into(),
            attempt: 1,
            outcome: Outcome::Failed {
                error: StepFailure::new(FailureKind::Failed, "host", "status ta"),
            },
            duration_ms: 1,
            at: Default::default(),
        };
        let back: Record = secrets.redact_as(&rec).expect("still a record");
        let Record::StepFinished { step, outcome, .. } = back else {
            panic!("kind changed");
        };
        assert_eq!(step, "start-tasks");
        let Outcome::Failed { error } = outcome else {
            panic!("outcome changed");
        };
        assert!(!error.message.contains("ta"), "{}", error.message);
        assert_eq!(error.kind, FailureKind::Failed);
    }
}

//! `PlanGraph`: a bound plan with its DAG resolved into waves — what preview renders and
//! what the executor runs. Nothing else reaches the executor.

use crate::actions;
use crate::plan::{BoundPlan, Dag, HostBinding, LOCAL_ROLE, Map, Step};
use crate::template;
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct PlanGraph {
    pub bound: BoundPlan,
    /// Step indices grouped into waves that may run together.
    pub waves: Vec<Vec<usize>>,
    /// `wave_of[i]`: the wave of step `i`.
    pub wave_of: Vec<usize>,
}

impl PlanGraph {
    pub fn build(bound: BoundPlan) -> PlanGraph {
        let waves = bound.valid.dag.waves();
        let mut wave_of = vec![0; bound.valid.plan.steps.len()];
        for (w, steps) in waves.iter().enumerate() {
            for &i in steps {
                wave_of[i] = w;
            }
        }
        PlanGraph {
            bound,
            waves,
            wave_of,
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.bound.valid.plan.steps
    }

    pub fn dag(&self) -> &Dag {
        &self.bound.valid.dag
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.bound.valid.index.get(id).copied()
    }

    /// The host a role names (`local` included).
    pub fn host(&self, role: &str) -> Option<&HostBinding> {
        self.bound.hosts.get(role).or_else(|| {
            self.bound
                .hosts
                .get(LOCAL_ROLE)
                .filter(|_| role == LOCAL_ROLE)
        })
    }

    /// Is the step safe to re-run after a crash left it in doubt?
    pub fn idempotent(&self, i: usize) -> bool {
        let step = &self.steps()[i];
        step.idempotent
            .unwrap_or_else(|| actions::lookup(&step.action).is_some_and(|a| a.idempotent))
    }

    /// Does the step's action change a host (as opposed to only looking)?
    pub fn changes(&self, i: usize) -> bool {
        actions::lookup(&self.steps()[i].action)
            .is_some_and(|a| a.kind == actions::ActionKind::Change)
    }

    /// Is the step's rollback hook safe to run although the step may not have run (it was
    /// left in doubt)? The hook's action says so, as a step's does.
    pub fn rollback_idempotent(&self, i: usize) -> bool {
        self.steps()[i]
            .rollback
            .as_ref()
            .and_then(|rb| actions::lookup(&rb.action))
            .is_some_and(|a| a.idempotent)
    }

    /// The PostgreSQL users whose passwords (the site's `postgres.passwords`) an action of
    /// the plan may log in with — a step, a rollback hook, a check, or a check one of them
    /// runs itself — from the parameters each action names (`About::login_params`), rendered
    /// with the site's values. None: any user (a name that is only known while the run goes,
    /// or that does not render).
    pub fn site_password_users(&self) -> Option<BTreeSet<String>> {
        let plan = &self.bound.valid.plan;
        let checks = plan
            .preconditions
            .iter()
            .chain(plan.steps.iter().flat_map(|s| &s.preconditions))
            .map(|c| (&c.check, &c.with));
        let steps = plan.steps.iter().flat_map(|s| {
            let hook = s.rollback.as_ref().map(|rb| (&rb.action, &rb.with));
            std::iter::once((&s.action, &s.with)).chain(hook)
        });
        let ctx = self.bound.context(None);
        let mut users = BTreeSet::new();
        for (action, with) in checks.chain(steps) {
            login_users(action, with, &ctx, &mut users)?;
        }
        Some(users)
    }

    /// Steps marked `point_of_no_return`, in plan order.
    pub fn points_of_no_return(&self) -> Vec<usize> {
        (0..self.steps().len())
            .filter(|&i| self.steps()[i].point_of_no_return)
            .collect()
    }

    /// The order compensations would run if every step completed in wave order and the run
    /// were then rolled back: newest first, stopping at the last point of no return.
    pub fn rollback_order(&self) -> Vec<usize> {
        let mut order = Vec::new();
        for wave in self.waves.iter().rev() {
            for &i in wave.iter().rev() {
                if self.steps()[i].point_of_no_return {
                    return order;
                }
                if self.steps()[i].rollback.is_some() {
                    order.push(i);
                }
            }
        }
        order
    }
}

/// Add the users `action` with these parameters (or the check it runs itself) logs in as;
/// None when one of them cannot be known before the run.
fn login_users(action: &str, with: &Map, ctx: &Value, users: &mut BTreeSet<String>) -> Option<()> {
    let Some(about) = actions::lookup(action) else {
        return Some(());
    };
    for param in about.login_params {
        let Some(value) = with.get(*param) else {
            continue;
        };
        let waits = |text: &str| {
            template::variables(template::shared(), text, template::Form::Template)
                .map_or(true, |vars| {
                    vars.iter().any(|p| p[0] == "steps" || p[0] == "result")
                })
        };
        if value
            .as_str()
            .is_some_and(|t| template::is_template(t) && waits(t))
        {
            return None;
        }
        match template::render_value(template::shared(), value, ctx).ok()? {
            Value::String(user) => {
                users.insert(user);
            }
            _ => return None,
        }
    }
    if let Some(nested) = about.runs_check {
        let inner = with.get(nested.check).and_then(Value::as_str);
        let empty = Map::new();
        let inner_with = with.get(nested.with).and_then(Value::as_object);
        if let Some(inner) = inner {
            login_users(inner, inner_with.unwrap_or(&empty), ctx, users)?;
        }
    }
    Some(())
}

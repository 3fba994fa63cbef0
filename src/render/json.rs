//! The preview as data: one stable, documented shape (`--format json`), from which the
//! text, DOT and Mermaid forms are also drawn.

use super::preview_params;
use crate::actions;
use crate::diag::Diagnostics;
use crate::graph::PlanGraph;
use crate::plan::{Check, Map};
use serde::Serialize;
use serde_json::Value;

/// Bumped only when a field changes meaning or disappears; new fields may appear.
pub(super) const PREVIEW_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub format_version: u32,
    pub plan: FileRef,
    pub site: FileRef,
    pub description: Option<String>,
    pub params: Map,
    pub preconditions: Vec<CheckView>,
    pub waves: Vec<Vec<String>>,
    pub steps: Vec<StepView>,
    pub points_of_no_return: Vec<String>,
    /// Compensations newest first, as they would run after a complete run; stops at the
    /// last point of no return.
    pub rollback_order: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileRef {
    pub name: String,
    pub file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    pub role: String,
    pub host: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub name: String,
    pub on: HostView,
    pub check: String,
    pub with: Value,
    pub expect: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackView {
    pub action: String,
    pub on: HostView,
    pub with: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub id: String,
    pub name: String,
    pub wave: usize,
    pub on: HostView,
    pub action: String,
    /// `check` (read-only) or `change`.
    pub kind: &'static str,
    pub with: Value,
    pub needs: Vec<String>,
    pub when: Option<String>,
    #[serde(rename = "become")]
    pub become_user: Option<String>,
    pub preconditions: Vec<CheckView>,
    pub rollback: Option<RollbackView>,
    pub timeout: Option<String>,
    pub retries: u32,
    pub retry_delay: Option<String>,
    pub idempotent: bool,
    pub on_unreachable: &'static str,
    pub point_of_no_return: bool,
}

fn host(graph: &PlanGraph, role: &str) -> HostView {
    HostView {
        role: role.to_string(),
        host: graph
            .host(role)
            .map(crate::plan::HostBinding::describe)
            .unwrap_or_default(),
    }
}

fn check_view(
    graph: &PlanGraph,
    pointer: &str,
    c: &Check,
    ctx: &Value,
    diags: &mut Diagnostics,
) -> CheckView {
    CheckView {
        name: c.name.clone(),
        on: host(graph, &c.on),
        check: c.check.clone(),
        with: preview_params(
            graph,
            &format!("{pointer}/with"),
            &Value::Object(c.with.clone()),
            ctx,
            diags,
        ),
        expect: c.expect.clone(),
    }
}

/// Build the preview, or the template errors the site's values cause.
pub fn preview_json(graph: &PlanGraph) -> Result<Preview, Diagnostics> {
    let bound = &graph.bound;
    let plan = &bound.valid.plan;
    let ctx = bound.context(None);
    let mut diags = Diagnostics::default();
    let id = |i: usize| plan.steps[i].id.clone();
    let preconditions = plan
        .preconditions
        .iter()
        .enumerate()
        .map(|(j, c)| check_view(graph, &format!("/preconditions/{j}"), c, &ctx, &mut diags))
        .collect();
    let mut steps = Vec::with_capacity(plan.steps.len());
    for wave in &graph.waves {
        for &i in wave {
            let s = &plan.steps[i];
            let base = format!("/steps/{i}");
            let rollback = s.rollback.as_ref().map(|r| RollbackView {
                action: r.action.clone(),
                on: host(graph, r.on.as_deref().unwrap_or(&s.on)),
                with: preview_params(
                    graph,
                    &format!("{base}/rollback/with"),
                    &Value::Object(r.with.clone()),
                    &ctx,
                    &mut diags,
                ),
            });
            steps.push(StepView {
                id: s.id.clone(),
                name: s.title().to_string(),
                wave: graph.wave_of[i] + 1,
                on: host(graph, &s.on),
                action: s.action.clone(),
                kind: match actions::lookup(&s.action).map(|a| a.kind) {
                    Some(actions::ActionKind::Check) => "check",
                    _ => "change",
                },
                with: preview_params(
                    graph,
                    &format!("{base}/with"),
                    &Value::Object(s.with.clone()),
                    &ctx,
                    &mut diags,
                ),
                needs: graph.dag().needs(i).into_iter().map(id).collect(),
                when: s.when.clone(),
                become_user: s
                    .become_user
                    .clone()
                    .or_else(|| graph.host(&s.on).and_then(|h| h.spec.become_user.clone())),
                preconditions: s
                    .preconditions
                    .iter()
                    .enumerate()
                    .map(|(j, c)| {
                        check_view(
                            graph,
                            &format!("{base}/preconditions/{j}"),
                            c,
                            &ctx,
                            &mut diags,
                        )
                    })
                    .collect(),
                rollback,
                timeout: s.timeout.map(|d| d.to_string()),
                retries: s.retries,
                retry_delay: s.retry_delay.map(|d| d.to_string()),
                idempotent: graph.idempotent(i),
                on_unreachable: match s.on_unreachable {
                    crate::plan::OnUnreachable::Fail => "fail",
                    crate::plan::OnUnreachable::Skip => "skip",
                },
                point_of_no_return: s.point_of_no_return,
            });
        }
    }
    let preview = Preview {
        format_version: PREVIEW_FORMAT,
        plan: FileRef {
            name: plan.name.clone(),
            file: bound.valid.doc.file.name.clone(),
        },
        site: FileRef {
            name: bound.site.site.clone(),
            file: bound.site_doc.file.name.clone(),
        },
        description: plan.description.clone(),
        params: bound.params.clone(),
        preconditions,
        waves: graph
            .waves
            .iter()
            .map(|w| w.iter().map(|&i| id(i)).collect())
            .collect(),
        steps,
        points_of_no_return: graph.points_of_no_return().into_iter().map(id).collect(),
        rollback_order: graph.rollback_order().into_iter().map(id).collect(),
    };
    diags.into_result(preview)
}

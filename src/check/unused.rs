//! Site values a plan never reads: `validate --site` warns about each (the run is not
//! refused: a site serves several plans, and what one leaves unused another may read).
//!
//! A site variable counts as read when a template of the plan reads it, a part of it, or
//! something that holds it (`vars.pg` reads all of `vars.pg.*`; `vars.vip.address | split`
//! reads `vars.vip.address`). `hosts.ROLE.vars.x` reads the host's own `x` and the site's
//! (the host's vars are laid over the site's). A secret counts as read when a template names
//! it, or when the site's `postgres.passwords` names it for a user an action of the plan
//! logs into PostgreSQL as.

use crate::diag::{Diagnostic, Diagnostics};
use crate::load::child;
use crate::plan::BoundPlan;
use crate::template::{self, VarPath, walk_templates};
use serde_json::Value;
use std::collections::BTreeSet;

/// Warnings, one per site variable (each leaf of `vars:` and of the plan's hosts' `vars:`)
/// and per secret that the plan does not read. `password_users`: the PostgreSQL users whose
/// site passwords the plan's actions may log in with (None: any).
pub fn unused_site_values(
    bound: &BoundPlan,
    password_users: Option<&BTreeSet<String>>,
) -> Diagnostics {
    let reads = Reads::of(bound);
    let site = &bound.site;
    let mut found = Diagnostics::default();
    let mut warn = |code: &'static str, pointer: &str, message: String| {
        let d = Diagnostic::new(code, message)
            .at(&bound.site_doc.file, bound.site_doc.key_span(pointer))
            .label("not read by this plan")
            .help(format!(
                "remove it if no other plan of this site reads it (`drplan validate PLAN --site {}` for each)",
                bound.site_doc.file.name
            ));
        found.push(d);
    };
    let plan = &bound.valid.plan.name;
    for leaf in leaves(&Value::Object(site.vars.clone()))
        .into_iter()
        .filter(|l| !l.is_empty())
    {
        if !reads.site_vars.iter().any(|r| related(r, &leaf)) {
            let pointer = leaf.iter().fold("/vars".to_owned(), |p, k| child(&p, k));
            warn(
                "drplan::site::unused_var",
                &pointer,
                format!(
                    "site variable `vars.{}` is not used by plan `{plan}`",
                    leaf.join(".")
                ),
            );
        }
    }
    for (role, host) in site
        .hosts
        .iter()
        .filter(|(r, _)| bound.hosts.contains_key(*r))
    {
        let read: Vec<&VarPath> = reads
            .host_vars
            .iter()
            .filter(|(r, _)| r == role)
            .map(|(_, p)| p)
            .collect();
        for leaf in leaves(&Value::Object(host.vars.clone()))
            .into_iter()
            .filter(|l| !l.is_empty())
        {
            if !read.iter().any(|r| related(r, &leaf)) {
                let base = child(&child("/hosts", role), "vars");
                let pointer = leaf.iter().fold(base, |p, k| child(&p, k));
                warn(
                    "drplan::site::unused_var",
                    &pointer,
                    format!(
                        "variable `hosts.{role}.vars.{}` is not used by plan `{plan}`",
                        leaf.join(".")
                    ),
                );
            }
        }
    }
    let passwords = site.password_secrets(password_users);
    for name in site.secrets.keys() {
        let read = reads.all_secrets || reads.secrets.contains(name) || passwords.contains(&name);
        if !read {
            warn(
                "drplan::site::unused_secret",
                &child("/secrets", name),
                format!("secret `{name}` is not used by plan `{plan}`"),
            );
        }
    }
    found.sorted()
}

/// What a plan's templates read of the site.
#[derive(Default)]
struct Reads {
    /// Paths under the site's `vars` (`["pg", "port"]`).
    site_vars: Vec<VarPath>,
    /// (role, path under that host's `vars`).
    host_vars: Vec<(String, VarPath)>,
    secrets: Vec<String>,
    /// A template reads `secrets` as a whole.
    all_secrets: bool,
}

impl Reads {
    fn of(bound: &BoundPlan) -> Reads {
        let mut reads = Reads::default();
        let env = template::shared();
        walk_templates(&bound.valid.doc.value, "", &mut |_, text, form| {
            for path in template::variables(env, text, form).unwrap_or_default() {
                reads.add(&path);
            }
        });
        reads
    }

    fn add(&mut self, path: &[String]) {
        match path {
            [root, rest @ ..] if root == "vars" => self.site_vars.push(rest.to_vec()),
            [root, role, vars, rest @ ..] if root == "hosts" && vars == "vars" => {
                self.site_vars.push(rest.to_vec());
                self.host_vars.push((role.clone(), rest.to_vec()));
            }
            // `hosts.ROLE` or `hosts` whole: all of their vars.
            [root, role] if root == "hosts" => {
                self.site_vars.push(Vec::new());
                self.host_vars.push((role.clone(), Vec::new()));
            }
            [root] if root == "hosts" => self.site_vars.push(Vec::new()),
            [root, name, ..] if root == "secrets" => self.secrets.push(name.clone()),
            [root] if root == "secrets" => self.all_secrets = true,
            _ => {}
        }
    }
}

/// Does reading `read` read `leaf` (one holds the other)?
fn related(read: &[String], leaf: &[String]) -> bool {
    read.iter().zip(leaf).all(|(a, b)| a == b)
}

/// The path of every leaf of a mapping: a value that is not a mapping, or an empty one.
fn leaves(v: &Value) -> Vec<VarPath> {
    match v {
        Value::Object(o) if !o.is_empty() => o
            .iter()
            .flat_map(|(k, x)| {
                leaves(x).into_iter().map(move |mut p| {
                    p.insert(0, k.clone());
                    p
                })
            })
            .collect(),
        _ => vec![Vec::new()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_and_relations() {
        let v = json!({ "pg": { "port": 1, "x": {} }, "vip": [1] });
        let got: Vec<String> = leaves(&v).iter().map(|p| p.join(".")).collect();
        assert_eq!(got, ["pg.port", "pg.x", "vip"]);
        let p = |s: &str| -> VarPath { s.split('.').map(str::to_owned).collect() };
        assert!(related(&p("pg"), &p("pg.port")));
        assert!(related(&p("vip.0"), &p("vip")));
        assert!(related(&[], &p("pg.port")));
        assert!(!related(&p("pg.x"), &p("pg.port")));
    }
}

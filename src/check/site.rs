//! Binding a valid plan to a site: every role gets a host, parameters get their values,
//! and templates that read `vars`/`secrets` are checked against what the site defines.

use crate::diag::{Diagnostic, Diagnostics, suggest};
use crate::load::{Document, child};
use crate::plan::{
    BoundPlan, HostBinding, HostSpec, LOCAL_ROLE, Map, ParamSpec, ParamType, Site, TransportKind,
    ValidPlan, shown,
};
use crate::schema::{self, shape_diagnostics};
use crate::template::{self, Form, walk_templates};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Check a parsed site document on its own.
pub fn site(doc: &Document) -> Result<Site, Diagnostics> {
    let v = schema::validators();
    let diags = shape_diagnostics(doc, "", &doc.value, &v.site, &v.site_doc, "site");
    if !diags.is_empty() {
        return Err(diags.sorted());
    }
    Deserialize::deserialize(&doc.value).map_err(|e| {
        Diagnostics::from(doc.error_at("drplan::schema::invalid", "", format!("invalid site: {e}")))
    })
}

/// Bind `valid` to the site in `site_doc`.
pub fn bind(valid: ValidPlan, site_doc: Document) -> Result<BoundPlan, Diagnostics> {
    let site = site(&site_doc)?;
    let mut diags = Diagnostics::default();
    let plan = &valid.plan;
    for role in &plan.roles {
        if !site.hosts.contains_key(role) {
            // Only hosts the plan leaves unused can be the misspelled one.
            let unused: Vec<&str> = site
                .hosts
                .keys()
                .map(String::as_str)
                .filter(|h| !plan.roles.iter().any(|r| r == h))
                .collect();
            let help = match suggest(role, unused) {
                Some(s) => format!("{s} (rename that host's role to `{role}`)"),
                None => format!("add `{role}: {{ address: … }}` under `hosts:`"),
            };
            let d = site_doc
                .error_at_key(
                    "drplan::site::unbound_role",
                    "/hosts",
                    format!(
                        "site `{}` does not bind role `{role}`, which plan `{}` uses",
                        site.site, plan.name
                    ),
                )
                .label(format!("no host for `{role}`"))
                .help(help);
            diags.push(d);
        }
    }
    let params = resolve_params(&valid, &site, &site_doc, &mut diags);
    check_postgres_passwords(&site, &site_doc, &mut diags);
    let mut hosts: BTreeMap<String, HostBinding> = site
        .hosts
        .iter()
        .filter(|(role, _)| plan.roles.contains(role))
        .map(|(role, spec)| {
            let mut vars = site.vars.clone();
            deep_merge(&mut vars, &spec.vars);
            (
                role.clone(),
                HostBinding {
                    role: role.clone(),
                    spec: spec.clone(),
                    vars,
                },
            )
        })
        .collect();
    let local = HostSpec {
        address: "localhost".into(),
        port: None,
        user: None,
        become_user: None,
        become_method: None,
        transport: Some(TransportKind::Local),
        vars: Map::new(),
        services: BTreeMap::new(),
        fence: None,
    };
    hosts.insert(
        LOCAL_ROLE.into(),
        HostBinding {
            role: LOCAL_ROLE.into(),
            spec: local,
            vars: site.vars.clone(),
        },
    );
    let site_dir = Path::new(&site_doc.file.name)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let bound = BoundPlan {
        valid,
        site,
        site_doc,
        site_dir,
        params,
        hosts,
    };
    check_site_references(&bound, &mut diags);
    diags.sorted().into_result(bound)
}

/// Every password the site's `postgres:` names must be one of its `secrets:`.
fn check_postgres_passwords(site: &Site, site_doc: &Document, diags: &mut Diagnostics) {
    let Some(pg) = &site.postgres else { return };
    for (user, secret) in &pg.passwords {
        if site.secrets.contains_key(secret) {
            continue;
        }
        let help = match suggest(secret, site.secrets.keys().map(String::as_str)) {
            Some(s) => s,
            None => {
                format!("declare it: `secrets: {{ {secret}: {{ env: VARIABLE }} }}` (or `file:`)")
            }
        };
        let d = site_doc
            .error_at(
                "drplan::site::unknown_secret",
                &child("/postgres/passwords", user),
                format!(
                    "the password of PostgreSQL user `{user}` is secret `{secret}`, which site `{}` does not declare under `secrets:`",
                    site.site
                ),
            )
            .label("no such secret")
            .help(help);
        diags.push(d);
    }
}

fn resolve_params(
    valid: &ValidPlan,
    site: &Site,
    site_doc: &Document,
    diags: &mut Diagnostics,
) -> Map {
    let mut out = Map::new();
    for (name, spec) in &valid.plan.params {
        // A site serves several plans; parameters this plan does not declare are not its business.
        let (value, from_site) = match site.params.get(name) {
            Some(v) => (v.clone(), true),
            None => match &spec.default {
                Some(v) => (v.clone(), false),
                None => {
                    let d = site_doc
                        .error_at_key("drplan::site::missing_param", "/params", format!("plan `{}` needs a value for parameter `{name}`, and it has no default", valid.plan.name))
                        .help(format!("set `{name}` under the site's `params:`"));
                    diags.push(d);
                    continue;
                }
            },
        };
        if !fits(spec.ty, &value) {
            let pointer = if from_site {
                child("/params", name)
            } else {
                format!(
                    "/params/{}/default",
                    name.replace('~', "~0").replace('/', "~1")
                )
            };
            let doc = if from_site { site_doc } else { &valid.doc };
            let d = doc
                .error_at(
                    "drplan::site::param_type",
                    &pointer,
                    format!(
                        "parameter `{name}` must be of type {}, found {value}",
                        format!("{:?}", spec.ty).to_lowercase()
                    ),
                )
                .label("wrong type");
            diags.push(d);
        } else if from_site && !spec.allows(&value) {
            diags.push(not_allowed(
                site_doc,
                "drplan::site::param_not_allowed",
                &child("/params", name),
                name,
                spec,
                &value,
            ));
        }
        out.insert(name.clone(), value);
    }
    out
}

/// A parameter value outside its `enum`, pointed at where it is written, with the closest
/// allowed value.
pub(super) fn not_allowed(
    doc: &Document,
    code: &'static str,
    pointer: &str,
    name: &str,
    spec: &ParamSpec,
    value: &Value,
) -> Diagnostic {
    let found = match value {
        Value::String(s) => format!("the string {s:?}"),
        other => other.to_string(),
    };
    let allowed: Vec<String> = spec.allowed.iter().flatten().map(shown).collect();
    let help = suggest(&shown(value), allowed.iter().map(String::as_str))
        .unwrap_or_else(|| format!("use one of {}", spec.allowed_list()));
    doc.error_at(
        code,
        pointer,
        format!(
            "parameter `{name}` must be one of {}, found {found}",
            spec.allowed_list()
        ),
    )
    .label("not an allowed value")
    .help(help)
}

pub(super) fn fits(ty: ParamType, v: &Value) -> bool {
    match ty {
        ParamType::String => v.is_string(),
        ParamType::Integer => v.is_i64() || v.is_u64(),
        ParamType::Number => v.is_number(),
        ParamType::Boolean => v.is_boolean(),
        ParamType::Duration => v
            .as_str()
            .is_some_and(|s| crate::plan::Duration::parse(s).is_ok()),
        ParamType::List => v.is_array(),
        ParamType::Map => v.is_object(),
    }
}

/// `over`'s keys replace `base`'s, recursing into mappings present in both.
pub fn deep_merge(base: &mut Map, over: &Map) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Every `vars.…`, `hosts.<role>.vars.…` and `secrets.…` the plan reads must exist in the
/// site, except a last name read only through `| default(…)` or an `is defined` test.
fn check_site_references(bound: &BoundPlan, diags: &mut Diagnostics) {
    let ctx = bound.context(None);
    let env = template::shared();
    let mut visit = |pointer: &str, text: &str, form: Form| {
        let Ok(vars) = template::variables(env, text, form) else {
            return;
        };
        let optional = template::optional_variables(text, form);
        for path in vars {
            let (root, lookup): (&str, &[String]) = match path[0].as_str() {
                "vars" | "secrets" => (path[0].as_str(), &path[..]),
                "hosts" if path.get(2).is_some_and(|p| p == "vars") => ("hosts", &path[..]),
                _ => continue,
            };
            // `x | default(…)` and `x is defined` let a site leave `x` out.
            let first = first_missing(&ctx, lookup)
                .filter(|&m| m + 1 < lookup.len() || !optional.contains(&path));
            if let Some(missing) = first {
                let shown = lookup[..=missing].join(".");
                let known = parent_keys(&ctx, &lookup[..missing]);
                let span = match text.find(shown.as_str()) {
                    Some(at) => bound.valid.doc.span_within(pointer, text, at, shown.len()),
                    None => bound.valid.doc.value_span(pointer),
                };
                let what = if root == "secrets" {
                    "secret"
                } else {
                    "variable"
                };
                let d = Diagnostic::new(
                    "drplan::template::undefined",
                    format!(
                        "undefined {what} `{shown}`: site `{}` does not define it",
                        bound.site.site
                    ),
                )
                .at(&bound.valid.doc.file, span)
                .label("not defined by the site")
                .help(
                    match suggest(&lookup[missing], known.iter().map(String::as_str)) {
                        Some(s) => format!("{s} (or define it in {})", bound.site_doc.file.name),
                        None => format!("define it in {}", bound.site_doc.file.name),
                    },
                );
                diags.push(d);
            }
        }
    };
    walk_templates(&bound.valid.doc.value, "", &mut visit);
}

fn first_missing(ctx: &Value, path: &[String]) -> Option<usize> {
    let mut cur = ctx;
    for (i, p) in path.iter().enumerate() {
        match cur {
            Value::Object(o) => match o.get(p) {
                Some(next) => cur = next,
                None => return Some(i),
            },
            // Looking into a scalar or list is for the runtime to judge.
            _ => return None,
        }
    }
    None
}

fn parent_keys(ctx: &Value, path: &[String]) -> Vec<String> {
    let mut cur = ctx;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return Vec::new(),
        }
    }
    cur.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

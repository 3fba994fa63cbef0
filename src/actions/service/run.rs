//! `service.start|stop|restart|status`: the site's own commands for the service when the
//! host lists it under `services:` (hosts without systemd, like the lab's), else systemd.
//!
//! Status follows LSB: exit 0 running, 3 stopped; anything else means the status itself
//! could not be told, which is a failure rather than a guess. start and stop look first and
//! do nothing when the service is already where it should be, then look again afterwards:
//! a start command that returns 0 while the service dies at once is not a success.

use serde_json::{Value, json};

use super::ServiceParams;
use crate::actions::failure::command_failure;
use crate::actions::host::{Ctx, Host};
use crate::plan::ServiceCommands;
use crate::step::StepFailure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Start,
    Stop,
    Restart,
    Status,
}

/// How to control one service on one host.
enum Control<'a> {
    Site(&'a ServiceCommands),
    Systemd(&'a str),
}

impl Control<'_> {
    fn argv(&self, verb: Verb) -> Vec<String> {
        match (self, verb) {
            (Control::Site(c), Verb::Start) => c.start.clone(),
            (Control::Site(c), Verb::Stop) => c.stop.clone(),
            (Control::Site(c), Verb::Status) => c.status.clone(),
            // Callers handle a site service without `restart` as stop + start.
            (Control::Site(c), Verb::Restart) => c.restart.clone().unwrap_or_default(),
            (Control::Systemd(unit), verb) => {
                let word = match verb {
                    Verb::Start => "start",
                    Verb::Stop => "stop",
                    Verb::Restart => "restart",
                    Verb::Status => "is-active",
                };
                vec!["systemctl".into(), word.into(), "--".into(), (*unit).into()]
            }
        }
    }
}

pub(super) async fn service(
    ctx: &Ctx<'_>,
    verb: Verb,
    p: ServiceParams,
) -> Result<Value, StepFailure> {
    let site = ctx.env.hosts.site(&ctx.call.role);
    let control = match site.and_then(|h| h.services.get(&p.unit)) {
        Some(commands) => Control::Site(commands),
        None => Control::Systemd(&p.unit),
    };
    if let Control::Site(c) = &control
        && (c.start.is_empty() || c.stop.is_empty() || c.status.is_empty())
    {
        return Err(ctx.invalid(format!(
            "the site's commands for service `{}` must each have a program",
            p.unit
        )));
    }
    let host = ctx.host().await?;
    let unit = p.unit.as_str();
    match verb {
        Verb::Status => {
            let active = is_active(&host, &control, unit).await?;
            Ok(json!({ "active": active, "changed": false }))
        }
        Verb::Start | Verb::Stop => {
            let want = verb == Verb::Start;
            if is_active(&host, &control, unit).await? == want {
                return Ok(json!({ "active": want, "changed": false }));
            }
            act(&host, &control, verb, unit).await?;
            settled(&host, &control, unit, want).await?;
            Ok(json!({ "active": want, "changed": true }))
        }
        Verb::Restart => {
            match &control {
                Control::Site(c) if c.restart.is_none() => {
                    if is_active(&host, &control, unit).await? {
                        act(&host, &control, Verb::Stop, unit).await?;
                        settled(&host, &control, unit, false).await?;
                    }
                    act(&host, &control, Verb::Start, unit).await?;
                }
                _ => act(&host, &control, Verb::Restart, unit).await?,
            }
            settled(&host, &control, unit, true).await?;
            Ok(json!({ "active": true, "changed": true }))
        }
    }
}

async fn act(
    host: &Host<'_>,
    control: &Control<'_>,
    verb: Verb,
    unit: &str,
) -> Result<(), StepFailure> {
    let word = match verb {
        Verb::Start => "starting",
        Verb::Stop => "stopping",
        Verb::Restart => "restarting",
        Verb::Status => "asking about",
    };
    let cmd = host.cmd(control.argv(verb));
    host.ok(cmd, &format!("{word} service {unit}")).await?;
    Ok(())
}

async fn is_active(
    host: &Host<'_>,
    control: &Control<'_>,
    unit: &str,
) -> Result<bool, StepFailure> {
    let argv = control.argv(Verb::Status);
    let out = host.run(host.cmd(argv.clone())).await?;
    match out.status {
        Some(0) => Ok(true),
        // systemctl is-active says 3 for inactive and failed units alike: both are "not running".
        Some(3) => Ok(false),
        _ => Err(command_failure(
            &host.label,
            &argv,
            &out,
            &format!("cannot tell whether service {unit} runs (status must exit 0 or 3)"),
        )),
    }
}

/// The service must be in the wanted state once its command returned.
async fn settled(
    host: &Host<'_>,
    control: &Control<'_>,
    unit: &str,
    want: bool,
) -> Result<(), StepFailure> {
    if is_active(host, control, unit).await? == want {
        return Ok(());
    }
    let state = if want { "running" } else { "stopped" };
    Err(host.fail(format!(
        "service {unit}: its command succeeded but its status does not say {state}"
    )))
}

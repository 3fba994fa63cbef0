//! `vip.assign`, `vip.release`, `vip.owner`: an IPv4 virtual IP moved with `ip addr`, announced
//! with gratuitous ARP (`arping -U`), and looked for elsewhere with duplicate address
//! detection (`arping -D`: exit 1 when some other host answers for the address).
//!
//! These need root on the host (`become: root`, or a root login). A failed announcement is
//! a warning in the result, not a failure: the address is assigned, and neighbours learn it
//! at their next ARP anyway.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::VipParams;
use crate::actions::failure::command_failure;
use crate::actions::host::{Ctx, Host};
use crate::step::StepFailure;

const DEFAULT_ARP_COUNT: u32 = 3;

/// A checked `ADDRESS/PREFIX`.
struct Vip {
    ip: Ipv4Addr,
    cidr: String,
}

fn parse(ctx: &Ctx<'_>, p: &VipParams) -> Result<Vip, StepFailure> {
    let bad = || {
        ctx.invalid(format!(
            "`address` must be an IPv4 address with a prefix length, like 10.231.0.100/24, not {:?}",
            p.address
        ))
    };
    let (ip, prefix) = p.address.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    let iface_ok = !p.interface.is_empty()
        && p.interface.len() < 16
        && !p.interface.starts_with('-')
        && !p.interface.contains(['/', ' ', '\0']);
    if !iface_ok {
        return Err(ctx.invalid(format!("{:?} is not an interface name", p.interface)));
    }
    Ok(Vip {
        ip,
        cidr: format!("{ip}/{prefix}"),
    })
}

/// The `ADDRESS/PREFIX` under which the interface holds the IP, if it does.
async fn held(host: &Host<'_>, vip: &Vip, iface: &str) -> Result<Option<String>, StepFailure> {
    let cmd = host.cmd(["ip", "-o", "-4", "addr", "show", "dev", iface]);
    let out = host
        .ok(cmd, &format!("listing the addresses of {iface}"))
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(held_in(&text, vip.ip))
}

/// Find `ip` in `ip -o addr show` output (`2: eth0    inet 10.0.0.5/24 brd … scope global eth0`).
fn held_in(text: &str, ip: Ipv4Addr) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        words.find(|w| *w == "inet")?;
        let cidr = words.next()?;
        let addr = cidr.split('/').next()?;
        (addr.parse::<Ipv4Addr>().ok()? == ip).then(|| cidr.to_owned())
    })
}

pub(super) async fn assign(ctx: &Ctx<'_>, p: VipParams) -> Result<Value, StepFailure> {
    let vip = parse(ctx, &p)?;
    let host = ctx.host().await?;
    if let Some(cidr) = held(&host, &vip, &p.interface).await? {
        return Ok(json!({ "changed": false, "held": true, "address": cidr }));
    }
    let add = [
        "ip",
        "addr",
        "add",
        vip.cidr.as_str(),
        "dev",
        p.interface.as_str(),
    ];
    host.ok(
        host.cmd(add),
        &format!("adding {} to {}", vip.cidr, p.interface),
    )
    .await?;
    let warning = announce(&host, &p.interface, vip.ip, p.arp_count).await;
    Ok(json!({
        "changed": true,
        "held": true,
        "address": vip.cidr,
        "announced": warning.is_none(),
        "warning": warning,
    }))
}

/// How long a quick duplicate-address probe waits for an answer before `timeout` ends it. `arping`
/// counts its waits in whole seconds; on a LAN the kernel of a host holding the address
/// answers a probe in well under a millisecond (0.5 ms on the lab), so a third of a second
/// still leaves hundreds of times that. `timeout -s INT` makes arping stop as after its own
/// deadline: it prints what it sent and received and exits with its usual status.
const QUICK_WAIT: &str = "0.3";

/// How long the first gratuitous ARP's `arping` runs before `timeout` ends it: it sends at
/// once and nothing answers an announcement; when it had not sent yet (a slow start), the
/// plain `arping` sends it.
const QUICK_SEND: &str = "0.1";

/// The announcer's name in its own command line (`sh -c SCRIPT NAME IFACE IP REPEATS`), by
/// which `vip.release` finds it.
const ANNOUNCER: &str = "drplan-vip-announce";

/// The background announcer: after a second, one `arping -U -c 1` at a time (each sends at
/// once, then waits a second), `$3` of them, while each can still send. The values arrive
/// as arguments, never in the script. An announcement can only leave while the host holds
/// the address: `arping -U` binds to it, and fails when it is gone (`vip.release` also ends
/// the announcer before it removes the address).
const ANNOUNCE_SCRIPT: &str = "exec </dev/null >/dev/null 2>&1; sleep 1; n=0; \
    while [ \"$n\" -lt \"$3\" ] && arping -q -U -c 1 -I \"$1\" \"$2\"; do n=$((n+1)); done";

/// `arping MODE -c 1 -I iface ip` under `timeout`, ended after `wait` seconds.
fn quick_arping(mode: &str, wait: &str, iface: &str, ip: Ipv4Addr) -> Vec<String> {
    let mut argv: Vec<String> = ["timeout", "--preserve-status", "-s", "INT", wait, "arping"]
        .map(str::to_owned)
        .to_vec();
    argv.push(mode.to_owned());
    argv.extend(["-c", "1", "-w", "1", "-I"].map(str::to_owned));
    argv.extend([iface.to_owned(), ip.to_string()]);
    argv
}

/// A count `arping` prints as it ends (`Sent 1 probes (1 broadcast(s))`, `Received 0
/// response(s)` after `what` = `"Sent "`, `"Received "`); 0 when it says nothing (it ended
/// before it could).
fn counted(stdout: &[u8], what: &str) -> u32 {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix(what)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Tell the neighbours: `count` gratuitous ARPs, a second apart. The first is sent here
/// (the step returns once it has left); the others by a detached announcer on the host
/// (`ANNOUNCE_SCRIPT`), which stops as soon as the host no longer holds the address, so it
/// never claims it for this host after a rollback or a failback has moved it on.
async fn announce(
    host: &Host<'_>,
    iface: &str,
    ip: Ipv4Addr,
    count: Option<u32>,
) -> Option<String> {
    let count = count.unwrap_or(DEFAULT_ARP_COUNT).max(1);
    let mut cmd = host.cmd(quick_arping("-U", QUICK_SEND, iface, ip));
    cmd.timeout = Some(std::time::Duration::from_secs(10));
    let first = match host.run(cmd).await {
        Ok(out) if out.status == Some(0) && counted(&out.stdout, "Sent ") > 0 => None,
        // Ended before it sent anything (a slow start), or no `timeout`: the plain way.
        Ok(_) => {
            let argv = ["arping", "-U", "-c", "1", "-I", iface].map(str::to_owned);
            let mut cmd = host.cmd(argv.into_iter().chain([ip.to_string()]));
            cmd.timeout = Some(std::time::Duration::from_secs(10));
            arping_warning(host.run(cmd).await)
        }
        Err(e) => arping_warning(Err(e)),
    };
    if first.is_some() || count == 1 {
        return first;
    }
    let mut argv: Vec<String> = ["setsid", "-f", "sh", "-c", ANNOUNCE_SCRIPT, ANNOUNCER]
        .map(str::to_owned)
        .to_vec();
    argv.extend([iface.to_owned(), ip.to_string(), (count - 1).to_string()]);
    let mut cmd = host.cmd(argv);
    cmd.timeout = Some(std::time::Duration::from_secs(10));
    match host.run(cmd).await {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "the first gratuitous ARP was sent; starting the repeats (setsid) exited with {:?}: {}",
            out.status,
            out.stderr_tail(3)
        )),
        Err(e) => Some(format!(
            "the first gratuitous ARP was sent; starting the repeats failed: {}",
            e.message
        )),
    }
}

/// The warning, if any, of a plain `arping -U`.
fn arping_warning(run: Result<crate::transport::Output, StepFailure>) -> Option<String> {
    match run {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "gratuitous ARP (arping -U) exited with {:?}: {}",
            out.status,
            out.stderr_tail(3)
        )),
        Err(e) => Some(format!("gratuitous ARP (arping -U) failed: {}", e.message)),
    }
}

/// End this host's background announcer of `ip` on `iface`, if one runs: the process and
/// its whole group (`setsid` makes it a group leader), so an `arping` it started goes too.
async fn stop_announcer(host: &Host<'_>, iface: &str, ip: Ipv4Addr) -> Result<(), StepFailure> {
    // `setsid -f` returns as soon as it forked: just after an assign, the announcer may
    // still carry setsid's command line, and not yet lead its own group.
    let pattern = format!(
        "(setsid -f )?sh -c .* {ANNOUNCER} {} {} [0-9]+",
        regex_quote(iface),
        regex_quote(&ip.to_string())
    );
    let out = host
        .run(host.cmd(["pgrep", "-f", "-x", pattern.as_str()]))
        .await?;
    // pgrep: 0 found, 1 none; anything else is an error.
    if !matches!(out.status, Some(0 | 1)) {
        return Err(command_failure(
            &host.label,
            &[
                "pgrep".to_owned(),
                "-f".to_owned(),
                "-x".to_owned(),
                pattern,
            ],
            &out,
            "looking for the VIP's background announcer",
        ));
    }
    let groups: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .flat_map(|pid| [format!("-{pid}"), pid.to_owned()])
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let argv = ["kill", "-TERM", "--"]
        .map(str::to_owned)
        .into_iter()
        .chain(groups);
    // An announcer that ended meanwhile, or has no group yet, is no error: `kill` signals
    // the rest, and what it could not signal sends nothing more.
    host.run(host.cmd(argv)).await?;
    Ok(())
}

/// `text` as a literal in an extended regular expression.
fn regex_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) async fn release(ctx: &Ctx<'_>, p: VipParams) -> Result<Value, StepFailure> {
    let vip = parse(ctx, &p)?;
    let host = ctx.host().await?;
    let Some(cidr) = held(&host, &vip, &p.interface).await? else {
        return Ok(json!({ "changed": false, "held": false }));
    };
    // No announcement for this host once it lets the address go.
    stop_announcer(&host, &p.interface, vip.ip).await?;
    // Deleted under the prefix it is held with: `ip addr del` wants an exact match.
    let del = [
        "ip",
        "addr",
        "del",
        cidr.as_str(),
        "dev",
        p.interface.as_str(),
    ];
    host.ok(
        host.cmd(del),
        &format!("removing {cidr} from {}", p.interface),
    )
    .await?;
    Ok(json!({ "changed": true, "held": false }))
}

pub(super) async fn owner(ctx: &Ctx<'_>, p: VipParams) -> Result<Value, StepFailure> {
    let vip = parse(ctx, &p)?;
    let host = ctx.host().await?;
    if held(&host, &vip, &p.interface).await?.is_some() {
        return Ok(json!({ "held": true, "answered_elsewhere": false }));
    }
    // One probe, a third of a second for an answer (`QUICK_WAIT`); when that quick probe
    // could not say (it ended before the probe left, or `timeout` is missing), the plain one:
    // a second for an answer, arping's smallest wait.
    let mut cmd = host.cmd(quick_arping("-D", QUICK_WAIT, &p.interface, vip.ip));
    cmd.timeout = Some(std::time::Duration::from_secs(10));
    let out = host.run(cmd).await?;
    let (probes, replies) = (
        counted(&out.stdout, "Sent "),
        counted(&out.stdout, "Received "),
    );
    let answered = match out.status {
        Some(0) if probes > 0 && replies == 0 => false,
        Some(1) if replies > 0 => true,
        _ => full_probe(&host, &p.interface, vip.ip).await?,
    };
    Ok(json!({ "held": false, "answered_elsewhere": answered }))
}

/// Duplicate address detection with arping's own deadline: does another host answer?
async fn full_probe(host: &Host<'_>, iface: &str, ip: Ipv4Addr) -> Result<bool, StepFailure> {
    let argv: Vec<String> = ["arping", "-D", "-c", "1", "-w", "1", "-I", iface]
        .map(str::to_owned)
        .into_iter()
        .chain([ip.to_string()])
        .collect();
    let mut cmd = host.cmd(argv.clone());
    cmd.timeout = Some(std::time::Duration::from_secs(10));
    let out = host.run(cmd).await?;
    match out.status {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(command_failure(
            &host.label,
            &argv,
            &out,
            "duplicate address detection (arping -D) could not run",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_arping_says_it_sent_and_received() {
        let free = b"ARPING 10.231.0.100 from 0.0.0.0 eth0\nSent 1 probes (1 broadcast(s))\nReceived 0 response(s)\n";
        assert_eq!((counted(free, "Sent "), counted(free, "Received ")), (1, 0));
        let answered = b"Unicast reply from 10.231.0.100 [62:D9:18:36:67:6D]  0.533ms\nSent 1 probes (1 broadcast(s))\nReceived 1 response(s)\n";
        assert_eq!(counted(answered, "Received "), 1);
        // Ended before it printed anything: nothing was sent, as far as anyone knows.
        assert_eq!(counted(b"", "Sent "), 0);
    }

    #[test]
    fn the_announcer_pattern_matches_the_address_literally() {
        assert_eq!(regex_quote("10.231.0.100"), "10\\.231\\.0\\.100");
        assert_eq!(regex_quote("eth0.100+"), "eth0\\.100\\+");
    }

    #[test]
    fn finds_the_address_whatever_its_prefix() {
        let out = "2: eth0    inet 10.231.0.14/24 brd 10.231.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                   2: eth0    inet 10.231.0.100/32 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            held_in(out, "10.231.0.100".parse().unwrap()).as_deref(),
            Some("10.231.0.100/32")
        );
        assert_eq!(held_in(out, "10.231.0.1".parse().unwrap()), None);
        assert_eq!(held_in(out, "10.231.0.10".parse().unwrap()), None);
    }
}

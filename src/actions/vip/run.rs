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

/// Tell the neighbours: `count` gratuitous ARPs, a second apart (`arping -U` waits that long,
/// also after the last one, for replies nobody sends to a gratuitous ARP: `-w` ends it as
/// the last one leaves, a second sooner with the same announcements). Not sent in the
/// background: an announcer still running when the address moves on (a
/// rollback, a failback soon after) would keep claiming it for the old host, and would
/// make the next duplicate-address probe see a conflict.
async fn announce(
    host: &Host<'_>,
    iface: &str,
    ip: Ipv4Addr,
    count: Option<u32>,
) -> Option<String> {
    let count = count.unwrap_or(DEFAULT_ARP_COUNT).max(1);
    let mut argv = vec!["arping".to_owned(), "-U".to_owned()];
    argv.extend(["-c".to_owned(), count.to_string()]);
    // `-w 0` means no deadline: one announcement still waits its second.
    if count > 1 {
        argv.extend(["-w".to_owned(), (count - 1).to_string()]);
    }
    argv.extend(["-I".to_owned(), iface.to_owned(), ip.to_string()]);
    let mut cmd = host.cmd(argv);
    cmd.timeout = Some(std::time::Duration::from_secs(u64::from(count) + 5));
    match host.run(cmd).await {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "gratuitous ARP (arping -U) exited with {:?}: {}",
            out.status,
            out.stderr_tail(3)
        )),
        Err(e) => Some(format!("gratuitous ARP (arping -U) failed: {}", e.message)),
    }
}

pub(super) async fn release(ctx: &Ctx<'_>, p: VipParams) -> Result<Value, StepFailure> {
    let vip = parse(ctx, &p)?;
    let host = ctx.host().await?;
    let Some(cidr) = held(&host, &vip, &p.interface).await? else {
        return Ok(json!({ "changed": false, "held": false }));
    };
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
    // One probe, a second for an answer: a neighbour holding the address answers within
    // milliseconds, and arping's resolution is whole seconds.
    let argv = [
        "arping".to_owned(),
        "-D".to_owned(),
        "-c".to_owned(),
        "1".to_owned(),
        "-w".to_owned(),
        "1".to_owned(),
        "-I".to_owned(),
        p.interface.clone(),
        vip.ip.to_string(),
    ];
    let mut cmd = host.cmd(argv.clone());
    cmd.timeout = Some(std::time::Duration::from_secs(10));
    let out = host.run(cmd).await?;
    let answered = match out.status {
        Some(0) => false,
        Some(1) => true,
        _ => {
            return Err(command_failure(
                &host.label,
                &argv,
                &out,
                "duplicate address detection (arping -D) could not run",
            ));
        }
    };
    Ok(json!({ "held": false, "answered_elsewhere": answered }))
}

#[cfg(test)]
mod tests {
    use super::*;

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

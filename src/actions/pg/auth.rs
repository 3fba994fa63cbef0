//! How `pg.*` actions log into PostgreSQL: the password of the user they connect as, and the
//! site's `sslmode`. Must not print, journal or pass a password in any argv.
//!
//! A password is the action's own `password:` when it has one, else the secret the site's
//! `postgres.passwords` names for that user. It reaches the PostgreSQL program only through
//! its environment: the command runs under `sh -c 'IFS= read -r PGPASSWORD … exec "$@"'`
//! and the password arrives on standard input. An `env PGPASSWORD=…` word would be in the
//! argv of `sudo` (alive for the whole command) on the host and of `ssh` on the controller,
//! where `ps` shows it to everyone.

use crate::actions::host::Ctx;
use crate::step::StepFailure;
use crate::transport::Command;

/// Reads the password from stdin into the environment, then becomes the program. 125: the
/// wrapper itself failed (no password arrived), never a PostgreSQL tool's own exit status.
const WITH_PASSWORD: &str = r#"IFS= read -r PGPASSWORD || { echo "drplan: no password arrived on standard input" >&2; exit 125; }
export PGPASSWORD
exec "$@""#;

/// How one connection authenticates.
#[derive(Debug, Clone, Default)]
pub(super) struct Login {
    password: Option<String>,
    sslmode: Option<&'static str>,
}

impl Login {
    /// The login of `user`: `explicit` (the action's `password:`), else the site's secret for
    /// that user, else none (trust, peer, a `~/.pgpass` of the host's own, or a certificate).
    pub(super) fn of(
        ctx: &Ctx<'_>,
        user: Option<&str>,
        explicit: Option<&str>,
    ) -> Result<Login, StepFailure> {
        let site = ctx.env.site.postgres.as_ref();
        let sslmode = site
            .and_then(|p| p.sslmode)
            .map(crate::plan::SslMode::as_str);
        let password = match (explicit, user) {
            (Some(pw), _) => Some(pw.to_owned()),
            (None, Some(user)) => match site.and_then(|p| p.passwords.get(user)) {
                Some(secret) => Some(secret_value(ctx, user, secret)?),
                None => None,
            },
            (None, None) => None,
        };
        if password
            .as_deref()
            .is_some_and(|p| p.contains(['\n', '\r', '\0']))
        {
            return Err(ctx.invalid(format!(
                "the password of PostgreSQL user `{}` contains a line break or a NUL byte, which no PostgreSQL connection can carry",
                user.unwrap_or("(unnamed)")
            )));
        }
        Ok(Login { password, sslmode })
    }

    pub(super) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub(super) fn sslmode(&self) -> Option<&'static str> {
        self.sslmode
    }

    /// `cmd` set up to log in: `PGSSLMODE` in its environment, and the password (if any)
    /// delivered through standard input into `PGPASSWORD`. The command must not read its
    /// own standard input.
    pub(super) fn apply(&self, mut cmd: Command) -> Command {
        if let Some(mode) = self.sslmode {
            cmd.env.push(("PGSSLMODE".into(), mode.into()));
        }
        if let Some(password) = &self.password {
            let mut argv = vec![
                "sh".to_owned(),
                "-c".to_owned(),
                WITH_PASSWORD.to_owned(),
                "sh".to_owned(),
            ];
            argv.append(&mut cmd.argv);
            cmd.argv = argv;
            cmd.stdin = Some(format!("{password}\n").into_bytes());
        }
        cmd
    }
}

fn secret_value(ctx: &Ctx<'_>, user: &str, secret: &str) -> Result<String, StepFailure> {
    match ctx.call.context["secrets"].get(secret).and_then(|v| v.as_str()) {
        Some(value) => Ok(value.to_owned()),
        None => Err(ctx.invalid(format!(
            "the site says the password of PostgreSQL user `{user}` is secret `{secret}`, which has no value in this run"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_travels_on_stdin_never_in_argv() {
        let login = Login {
            password: Some("s3cr3t $(x) 'q'".into()),
            sslmode: Some("require"),
        };
        let cmd = login.apply(Command::new(["psql", "-c", "select 1"]));
        assert!(
            cmd.argv.iter().all(|a| !a.contains("s3cr3t")),
            "{:?}",
            cmd.argv
        );
        assert_eq!(&cmd.argv[..2], ["sh", "-c"]);
        assert_eq!(&cmd.argv[3..], ["sh", "psql", "-c", "select 1"]);
        assert_eq!(cmd.stdin.as_deref(), Some(&b"s3cr3t $(x) 'q'\n"[..]));
        assert!(cmd.env.contains(&("PGSSLMODE".into(), "require".into())));
        assert!(cmd.env.iter().all(|(_, v)| !v.contains("s3cr3t")));

        let none = Login::default().apply(Command::new(["psql"]));
        assert_eq!(none.argv, ["psql"]);
        assert!(none.stdin.is_none() && none.env.is_empty());
    }
}

//! `file.*`: files and directories on a host, and between hosts. Parameters and declarations
//! are here; the code in `run.rs` and `sync.rs`, with the helpers other families use too
//! (`read.rs`: reading and atomically replacing one file; `sync_plan.rs`: what a sync moves).

pub(crate) mod read;
mod run;
pub(crate) mod sync;
pub(crate) mod sync_plan;

use super::action::ActionKind::{Change, Check};
use super::action::{About, Action, Registered};
use super::host::Ctx;
use crate::step::StepFailure;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Write a file atomically (temporary file + rename).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileWriteParams {
    /// Absolute path of the file.
    pub path: String,
    /// The file's whole content (text).
    pub content: String,
    /// Octal mode, e.g. `"0644"` (default: keep the old file's, else 0644).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0?[0-7]{3}$"))]
    pub mode: Option<String>,
    /// `user` or `user:group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Copy one file from another role's host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileCopyParams {
    /// The role whose host has the file (or `local`).
    pub from: String,
    /// Path on that host.
    pub src: String,
    /// Path on this host.
    pub dest: String,
    /// Octal mode (default: the source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0?[0-7]{3}$"))]
    pub mode: Option<String>,
    /// `user` or `user:group` (default: the step's user for a new file, else unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Make a directory here match one on another role's host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSyncParams {
    /// The role whose host has the source directory.
    pub from: String,
    /// Absolute path of the directory on the `from` host.
    pub src: String,
    /// Absolute path of the directory here.
    pub dest: String,
    /// Names or globs (relative to `src`) left alone on both sides, e.g. `db.properties`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Remove files in `dest` that `src` lacks (excluded ones are kept). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<bool>,
}

/// Rename a file on the host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRenameParams {
    /// Absolute path to rename.
    pub path: String,
    /// Its new absolute path.
    pub to: String,
}

/// Remove a file (or a directory with `recursive`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRemoveParams {
    /// Absolute path to remove.
    pub path: String,
    /// Remove a directory with everything in it (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
}

/// Create an empty file when absent.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileTouchParams {
    /// Absolute path of the file.
    pub path: String,
    /// Octal mode (default: 0644 when created; an existing file's is left alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^0?[0-7]{3}$"))]
    pub mode: Option<String>,
    /// `user` or `user:group` (default: an existing file's is left alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Look at a path.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStatParams {
    /// Absolute path to look at (symlinks are followed).
    pub path: String,
}

// The family's actions: each one's declaration, and the code that does it.

/// Every action of this family, for the registry.
pub(super) const ACTIONS: &[&dyn Registered] =
    &[&Copy, &Remove, &Rename, &Stat, &Sync, &Touch, &Write];

struct Copy;

impl Action for Copy {
    type Params = FileCopyParams;
    const ABOUT: About = About {
        name: "file.copy",
        kind: Change,
        idempotent: true,
        summary: "Copy one file from another role's host to this host (atomic replace)",
        result: "`changed`, `md5` of the content; `attributes_only: true` when only mode or owner \
            changed.",
        needs: "`sh`, `stat`, `md5sum`, `dd`, `cat` on the source host; `sh`, `mktemp`, `chmod`, \
            `chown`, `mv` on this one. Reads as the source host's login user, writes as the step's \
            user.",
        role_params: &["from"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: FileCopyParams) -> Result<Value, StepFailure> {
        run::copy(ctx, p).await
    }
}

struct Remove;

impl Action for Remove {
    type Params = FileRemoveParams;
    const ABOUT: About = About {
        name: "file.remove",
        kind: Change,
        idempotent: true,
        summary: "Remove a file or directory (nothing to do when absent)",
        result: "`changed`: false when nothing was there.",
        needs: "`sh`, `rm`; the right to remove the path as the step's user.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: FileRemoveParams) -> Result<Value, StepFailure> {
        run::remove(ctx, p).await
    }
}

struct Rename;

impl Action for Rename {
    type Params = FileRenameParams;
    const ABOUT: About = About {
        name: "file.rename",
        kind: Change,
        idempotent: true,
        summary: "Rename a file on the host (done when the target exists and the source does not)",
        result: "`changed`: false when `to` exists and `path` does not. Fails when both or neither exist.",
        needs: "`sh`, `mv` (GNU, `-T`).",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: FileRenameParams) -> Result<Value, StepFailure> {
        run::rename(ctx, p).await
    }
}

struct Stat;

impl Action for Stat {
    type Params = FileStatParams;
    const ABOUT: About = About {
        name: "file.stat",
        kind: Check,
        idempotent: true,
        summary: "Report whether a path exists, its size, mode and md5",
        result: "`exists`; when it does: `size`, `mode` (`0644`), `md5` (regular files), `type` (`regular \
            file`, `directory`, …), `owner` (`user:group`); otherwise those are null.",
        needs: "`sh`, `stat`, `md5sum` (GNU coreutils).",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: FileStatParams) -> Result<Value, StepFailure> {
        run::stat(ctx, p).await
    }
}

struct Sync;

impl Action for Sync {
    type Params = FileSyncParams;
    const ABOUT: About = About {
        name: "file.sync",
        kind: Change,
        idempotent: true,
        summary: "Make a directory on this host match one on another role's host, with excludes",
        result: "`changed`, `deleted` (paths removed because the source lacks them) and `skipped` \
            (excluded paths) — lists of paths relative to `dest`.",
        needs: "`find`, `md5sum`, `tar`, `dd` on both hosts; `bash` here. Run as root (or a user who may \
            write `dest` and set its owners) to keep owners.",
        role_params: &["from"],
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: FileSyncParams) -> Result<Value, StepFailure> {
        sync::sync(ctx, p).await
    }
}

struct Touch;

impl Action for Touch {
    type Params = FileTouchParams;
    const ABOUT: About = About {
        name: "file.touch",
        kind: Change,
        idempotent: true,
        summary: "Create an empty file if it does not exist",
        result: "`changed`; `created: true` when the file was made.",
        needs: "`sh`, `stat`, `chmod`, `chown`, `mv`.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: FileTouchParams) -> Result<Value, StepFailure> {
        run::touch(ctx, p).await
    }
}

struct Write;

impl Action for Write {
    type Params = FileWriteParams;
    const ABOUT: About = About {
        name: "file.write",
        kind: Change,
        idempotent: true,
        summary: "Write a file's content atomically (nothing to do when identical)",
        result: "`changed`, `md5` of the content; `attributes_only: true` when only mode or owner \
            changed.",
        needs: "`sh`, `stat`, `md5sum`, `mktemp`, `chmod`, `chown`, `mv`; the content travels on stdin.",
        ..About::PLAIN
    };

    async fn run(ctx: &Ctx<'_>, p: FileWriteParams) -> Result<Value, StepFailure> {
        run::write(ctx, p).await
    }
}

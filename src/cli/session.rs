//! What `apply`, `resume` and `rollback` share: the run's stored plan, opening runs,
//! taking the site lock, wiring the executor to real hosts, and turning how a run ended
//! into a typed `Failure` (which knows its message and exit code).

use super::{Failure, Global};
use crate::actions::{ActionRunner, Approvals};
use crate::check;
use crate::diag::{Diagnostics, SourceFile};
use crate::events::EventSink;
use crate::evidence::RunEvidence;
use crate::exec::{Ending, Executor, OnFailure, Options, Preconditions, RunState, Secrets, Shared};
use crate::graph::PlanGraph;
use crate::journal::{
    EtcdConnect, EtcdStore, FileRunStore, HeldLock, Journal, LockInfo, Replay, RunId, RunStore,
    StoreUrl,
};
use crate::load::Document;
use crate::saved::{SavedFile, sha256_hex};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `runs/RUN/plan.json`: the exact texts a run executes, with their hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    pub drplan_run: u32,
    pub plan: SavedFile,
    pub site: SavedFile,
    /// Parameter values given for this run (`--param`, `--params`), over the site's.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: crate::plan::Map,
    /// How the run was started: `resume` keeps it unless told otherwise.
    #[serde(default)]
    pub options: RunOptions,
}

/// The run's own choices of parallelism and failure handling.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RunOptions {
    pub parallel: Option<u16>,
    pub on_failure: Option<OnFailure>,
}

impl RunPlan {
    /// The graph the run executes: its stored texts, with its parameter values.
    pub fn graph(&self) -> Result<PlanGraph, Failure> {
        super::with_params(graph_from(&self.plan, &self.site)?, &self.params)
    }

    /// Refuse texts that are not the ones their hashes name: what runs is what was hashed
    /// (and so what was reviewed), whoever edited the stored file since.
    pub fn verify_texts(&self, what: &str) -> Result<(), Failure> {
        for f in [&self.plan, &self.site] {
            let actual = sha256_hex(f.text.as_bytes());
            if actual != f.sha256 {
                return Err(Failure::Altered {
                    what: what.to_owned(),
                    path: f.path.clone(),
                    recorded: f.sha256.clone(),
                    stored: actual,
                });
            }
        }
        Ok(())
    }

    /// Refuse when the files on disk are no longer the ones this run (or saved plan) holds.
    pub fn check_unchanged(&self, what: &str) -> Result<(), Failure> {
        for f in [&self.plan, &self.site] {
            // A shipped plan is compared with the text of this drplan.
            let now = match crate::shipped::stored(&f.path) {
                Some(shipped) => sha256_hex(shipped.text.as_bytes()),
                None => std::fs::read(&f.path)
                    .map(|b| sha256_hex(&b))
                    .map_err(|source| Failure::Unchecked {
                        path: f.path.clone(),
                        source,
                    })?,
            };
            if now != f.sha256 {
                return Err(Failure::Changed {
                    path: f.path.clone(),
                    since: what.to_owned(),
                    then: f.sha256.clone(),
                    now,
                });
            }
        }
        Ok(())
    }
}

/// Load a graph from texts held in a run or saved plan.
pub fn graph_from(plan: &SavedFile, site: &SavedFile) -> Result<PlanGraph, Diagnostics> {
    let p = Document::parse(SourceFile::new(
        plan.path.display().to_string(),
        plan.text.as_str(),
    ))?;
    let s = Document::parse(SourceFile::new(
        site.path.display().to_string(),
        site.text.as_str(),
    ))?;
    Ok(PlanGraph::build(check::bind(check::plan(p)?, s)?))
}

/// Where runs and site locks are kept: etcd with `--store`, else files in `--state-dir`.
pub fn store(global: &Global) -> Result<Box<dyn RunStore>, Failure> {
    match &global.store {
        None => Ok(Box::new(FileRunStore::new(&global.state_dir))),
        Some(text) => Ok(Box::new(EtcdStore::connect(etcd_settings(text)?)?)),
    }
}

/// The store URL, and the files it names read (each trusted as the other input files are).
fn etcd_settings(text: &str) -> Result<EtcdConnect, Failure> {
    let url = StoreUrl::parse(text).map_err(|why| Failure::BadStore {
        store: text.to_owned(),
        why,
    })?;
    // Text files, refused when another user could have written them (`load::read_text`).
    let read = |path: &Path| {
        crate::load::read_text(path).map_err(|message| Failure::Unreadable { message })
    };
    let ca = url
        .ca
        .as_deref()
        .map(read)
        .transpose()?
        .map(String::into_bytes);
    let identity = match &url.identity {
        Some((cert, key)) => Some((read(cert)?.into_bytes(), read(key)?.into_bytes())),
        None => None,
    };
    let password = match &url.user {
        // One trailing newline is the file's, not the password's.
        Some((_, file)) => {
            let text = read(file)?;
            Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())
        }
        None => None,
    };
    Ok(EtcdConnect {
        url,
        ca,
        identity,
        password,
    })
}

/// Take the site's lock for this run, or fail with exit 4 naming the holder.
pub fn lock(
    store: &dyn RunStore,
    site: &str,
    run_id: &RunId,
    command: &str,
) -> Result<HeldLock, Failure> {
    let info = LockInfo::for_this_process(run_id.as_str(), command);
    let held = store.lock_site(site, &info)?;
    if let Some(note) = &held.note {
        eprintln!("note: {note}");
    }
    Ok(held)
}

/// An existing run's stored plan, replayed state and journal.
pub type Opened = (RunId, RunPlan, RunState, Box<dyn Journal>);

/// Open a run to continue it (`resume`, `rollback`): `refuse` judges it first (a run it
/// refuses is not worth its site's lock); then take the lock, and read again what the
/// store holds, which nobody else can change from then on (another controller may have
/// written until its lease ran out), and judge that.
pub fn open_locked(
    store: &dyn RunStore,
    run: &str,
    command: &str,
    refuse: impl Fn(&RunId, &RunState) -> Result<(), Failure>,
) -> Result<(HeldLock, Opened), Failure> {
    let (id, _, state, _) = open(store, run)?;
    refuse(&id, &state)?;
    let held = lock(store, &state.site, &id, command)?;
    let opened = open(store, run)?;
    refuse(&opened.0, &opened.2)?;
    Ok((held, opened))
}

/// An existing run's stored plan, replayed state and journal.
pub fn open(store: &dyn RunStore, run: &str) -> Result<Opened, Failure> {
    let id: RunId = run.parse()?;
    let opened = store.open_run(&id)?;
    let (plan, state) = verified(&id, &opened.plan, &opened.replay)?;
    Ok((id, plan, state, opened.journal))
}

/// An existing run read without opening it for writing (`serve`, `report`): its stored
/// plan, replayed state and records.
pub fn read(
    store: &dyn RunStore,
    run: &str,
) -> Result<(RunId, RunPlan, RunState, Replay), Failure> {
    let id: RunId = run.parse()?;
    let (plan, replay) = store.read_run(&id)?;
    let (plan, state) = verified(&id, &plan, &replay)?;
    Ok((id, plan, state, replay))
}

/// A run's stored plan and replayed journal, refused unless they belong together.
fn verified(id: &RunId, plan: &[u8], replay: &Replay) -> Result<(RunPlan, RunState), Failure> {
    let plan: RunPlan = serde_json::from_slice(plan).map_err(|source| Failure::StoredPlan {
        run: id.clone(),
        source,
    })?;
    plan.verify_texts(&format!("run {id}"))?;
    let state = RunState::replay(&replay.records, replay.torn_tail).map_err(|reason| {
        Failure::UnknownRecord {
            run: id.clone(),
            reason,
        }
    })?;
    let mine = state.run_id == id.as_str()
        && state.plan_sha256 == plan.plan.sha256
        && state.site_sha256 == plan.site.sha256
        && state.params == plan.params;
    if state.started && !mine {
        return Err(Failure::ForeignJournal {
            run: id.clone(),
            other: if state.run_id.is_empty() {
                "unnamed".to_owned()
            } else {
                state.run_id.clone()
            },
            plan_sha256: state.plan_sha256.clone(),
            site_sha256: state.site_sha256.clone(),
        });
    }
    Ok((plan, state))
}

/// A run's evidence (`serve`, `report`), read without opening it for writing; `live` when a
/// process holds the site's lock for it now.
pub fn evidence(store: &dyn RunStore, run: &str) -> Result<(RunEvidence, Replay), Failure> {
    let (id, plan, state, replay) = read(store, run)?;
    let graph = plan.graph()?;
    let mut e = RunEvidence::build(id.as_str(), &graph, &state, &replay.records);
    e.live = store
        .holder(&graph.bound.site.site)
        .is_some_and(|h| h.run_id == id.as_str());
    Ok((e, replay))
}

/// Everything a run needs that can be known before it exists: the secrets, and every
/// template that does not wait for a step. A failure here leaves nothing on disk.
pub fn prepare(graph: &PlanGraph) -> Result<Secrets, Failure> {
    let secrets = secrets(graph)?;
    let fits = |action: &str, with: &serde_json::Value| {
        crate::actions::check_params(action, with).unwrap_or(Ok(()))
    };
    let problems = crate::exec::context::render_ahead(graph, &secrets, &fits);
    if !problems.is_empty() {
        return Err(Failure::RenderAhead { problems });
    }
    Ok(secrets)
}

/// The secrets the site names, read from where it says they are, once the files ssh reads
/// on drplan's behalf are known to be trustworthy (`trust_ssh_files`).
pub fn secrets(graph: &PlanGraph) -> Result<Secrets, Failure> {
    trust_ssh_files(&graph.bound)?;
    Secrets::resolve(graph).map_err(|message| Failure::Secret { message })
}

/// The site's SSH identity and known_hosts files, which ssh reads on drplan's behalf:
/// refused when another user could have written them (`trust::check_input`).
fn trust_ssh_files(bound: &crate::check::BoundPlan) -> Result<(), Failure> {
    let Some(ssh) = &bound.site.ssh else {
        return Ok(());
    };
    for file in std::iter::once(&ssh.known_hosts).chain(&ssh.identity) {
        crate::trust::check_input(&bound.site_dir.join(file), None)?;
    }
    Ok(())
}

/// The events subscriber the flags ask for.
pub fn events(global: &Global, json: bool) -> Arc<dyn EventSink> {
    if json {
        Arc::new(crate::ui::JsonLines)
    } else if global.quiet {
        Arc::new(crate::events::Silent)
    } else {
        Arc::new(crate::ui::Lines::stdout(
            global.stdout_color(),
            global.verbose > 0,
        ))
    }
}

/// The events subscriber of a forward run (`apply`, `resume`): on a terminal, with human
/// output, the live view (`done` steps already done); else as `events`.
pub fn progress(global: &Global, json: bool, done: usize) -> Arc<dyn EventSink> {
    if !json && !global.quiet && std::io::stdout().is_terminal() {
        Arc::new(crate::ui::Live::stdout(
            global.stdout_color(),
            global.verbose > 0,
            done,
        ))
    } else {
        events(global, json)
    }
}

/// Everything needed to drive a run against its hosts.
pub struct Drive {
    pub graph: PlanGraph,
    pub journal: Box<dyn Journal>,
    pub state: RunState,
    pub events: Arc<dyn EventSink>,
    pub approve: Vec<String>,
    pub state_dir: PathBuf,
    /// From `prepare`.
    pub secrets: Secrets,
}

/// Build the executor over real transports; stop scheduling on SIGINT/SIGTERM.
pub fn executor(d: Drive) -> Result<Executor<ActionRunner>, Failure> {
    let runner = ActionRunner::new(
        &d.graph.bound,
        &crate::transport::control_dir(&d.state_dir).map_err(Failure::io(format!(
            "create the SSH control directory in {}",
            d.state_dir.display()
        )))?,
        Approvals::new(d.approve, std::io::stdin().is_terminal()),
        d.secrets.redactor().clone(),
    );
    // Signals first: a Ctrl-C once connections are being opened must stop the run, not
    // kill drplan.
    let cancel = crate::exec::Cancel::on_signals();
    runner.warm_up();
    let mut shared = Shared::new(d.graph, runner, d.secrets, d.events);
    shared.cancel = cancel;
    Ok(Executor::new(shared, d.journal, d.state))
}

/// `--on-failure`: the executor's `OnFailure`, as the command line spells it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OnFailureArg {
    /// Stop, keep the checkpoint, and tell how to resume or roll back.
    Pause,
    /// Run the compensations of completed steps, newest first.
    Rollback,
}

impl From<OnFailureArg> for OnFailure {
    fn from(a: OnFailureArg) -> Self {
        match a {
            OnFailureArg::Pause => OnFailure::Pause,
            OnFailureArg::Rollback => OnFailure::Rollback,
        }
    }
}

/// Flags shared by the commands that run steps forward (`apply`, `resume`).
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    /// How many steps may run at once [default: 8; `resume`: what the run was started with].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// What to do when a step fails [default: pause; `resume`: what the run was started with].
    #[arg(long, value_enum)]
    pub on_failure: Option<OnFailureArg>,
    /// Approve a `manual.approve` step ahead of time (repeatable).
    #[arg(long, value_name = "STEP")]
    pub approve: Vec<String>,
    /// text, or json: one event per line.
    #[arg(long, value_enum, default_value = "text")]
    pub format: super::validate::Format,
}

impl RunFlags {
    pub fn json(&self) -> bool {
        matches!(self.format, super::validate::Format::Json)
    }

    /// The flags given, over the run's stored choices, over the defaults.
    pub fn choices(&self, stored: RunOptions) -> RunOptions {
        RunOptions {
            parallel: Some(self.parallel.or(stored.parallel).unwrap_or(8)),
            on_failure: Some(
                self.on_failure
                    .map(OnFailure::from)
                    .or(stored.on_failure)
                    .unwrap_or_default(),
            ),
        }
    }

    /// Options for a forward run.
    pub fn options(&self, stored: RunOptions, retry: Vec<String>, skip: Vec<String>) -> Options {
        let c = self.choices(stored);
        Options {
            parallel: c.parallel.unwrap_or(8).into(),
            on_failure: c.on_failure.unwrap_or_default(),
            retry,
            skip,
            kill_stale: false,
        }
    }
}

/// One line counting where the steps ended, for the end of a run's progress output.
pub fn summary(state: &RunState, graph: &PlanGraph, wall: std::time::Duration) -> String {
    use crate::exec::StepState;
    let (mut done, mut skipped, mut failed, mut doubt, mut pending, mut undone) =
        (0, 0, 0, 0, 0, 0);
    for s in graph.steps() {
        match state.step(&s.id) {
            StepState::Succeeded { .. } if state.compensated.contains(&s.id) => undone += 1,
            StepState::Succeeded { .. } => done += 1,
            StepState::Skipped { .. } => skipped += 1,
            StepState::Failed { .. } => failed += 1,
            StepState::InDoubt { .. } => doubt += 1,
            StepState::Pending => pending += 1,
        }
    }
    let busy: u64 = state.durations_ms.values().sum();
    let mut parts = vec![
        format!("{done} done"),
        format!("{skipped} skipped"),
        format!("{failed} failed"),
    ];
    if undone > 0 {
        parts.push(format!("{undone} rolled back"));
    }
    if doubt > 0 {
        parts.push(format!("{doubt} in doubt"));
    }
    if pending > 0 {
        parts.push(format!("{pending} not started"));
    }
    format!(
        "summary: {} in {:.2}s (steps busy {:.2}s in total)",
        parts.join(", "),
        wall.as_secs_f64(),
        busy as f64 / 1000.0
    )
}

/// Print the summary (or emit the last JSON event) and conclude.
pub fn finish(
    ex: &Executor<ActionRunner>,
    run: &RunId,
    ending: Ending,
    started: std::time::Instant,
    output: Output,
) -> Result<(), Failure> {
    let line = summary(&ex.state, &ex.shared.graph, started.elapsed());
    ex.shared.events.close();
    match output {
        Output::Json => ex.shared.emit(crate::events::Event::RunFinished {
            run_id: run.to_string(),
            status: ex.state.status(),
            summary: line,
        }),
        Output::Text => crate::ui::say(&line),
        Output::Quiet => {}
    }
    conclude(run, ending, output == Output::Text)
}

/// Who reads stdout: people, machines (JSON lines only), or nobody (`-q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
    Quiet,
}

impl Output {
    pub fn of(global: &Global, json: bool) -> Output {
        if json {
            Output::Json
        } else if global.quiet {
            Output::Quiet
        } else {
            Output::Text
        }
    }
}

/// How a run ended → what the operator reads and the exit code.
pub fn conclude(run: &RunId, ending: Ending, say_success: bool) -> Result<(), Failure> {
    match Failure::ended(run, ending) {
        Some(failure) => Err(failure),
        None => {
            if say_success {
                crate::ui::say(&format!("run {run} succeeded"));
            }
            Ok(())
        }
    }
}

/// Run the plan's preconditions: for a new run, and for one that stopped before they had
/// all held (they are never checked again once `preconditions_passed` is journaled: after
/// a promote they no longer hold, by design).
pub async fn preconditions(ex: &mut Executor<ActionRunner>, run: &RunId) -> Result<(), Failure> {
    match ex.preconditions().await.map_err(Failure::unrecorded(run))? {
        Preconditions::Held => Ok(()),
        Preconditions::Refused(failure) => Err(Failure::Refused {
            run: run.clone(),
            failure: Box::new(failure),
        }),
        Preconditions::Interrupted => Err(Failure::InterruptedBeforeStart { run: run.clone() }),
    }
}

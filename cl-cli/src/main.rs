//! The `cl` command line (see the library docs of `cl-cli` and `cl --help`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cl_cli::aggregate::aggregate;
use cl_cli::grid::{Grid, is_grid};
use cl_cli::run::{RunOptions, RunOutcome, check_buildable, execute, write_json};
use cl_cli::slurm::{self, SlurmOptions};
use cl_cli::spec::{Format, load_spec, parse_value, read_text};
use cl_cli::sweep::{self, Shard, Workers};
use cl_cli::{CliError, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Continual-learning runs as data: run a spec, sweep a grid (locally or on Slurm), aggregate
/// mean ± std over seeds.
#[derive(Debug, Parser)]
#[command(name = "cl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run one spec file (TOML or JSON) into a run directory; resume it if interrupted.
    Run(RunArgs),
    /// Expand a grid file into runs and run those not complete, locally or on Slurm.
    Sweep(Box<SweepArgs>),
    /// Mean ± std over seeds of a sweep directory's runs (markdown, JSON, picture).
    Aggregate(AggregateArgs),
    /// Check spec or grid files without running them.
    Validate(ValidateArgs),
    /// Run the runs of one Slurm array task (what the generated sbatch script calls).
    #[command(hide = true)]
    Task {
        /// The sweep directory.
        out: PathBuf,
        /// The array task's index.
        index: usize,
        /// The plan of the submission (slurm/tasks-<stamp>.json).
        #[arg(long)]
        plan: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The spec file (`.toml`, or `.json`).
    spec: PathBuf,
    /// The run directory [default: runs/<id>].
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// The folder of the dataset files (else the benchmark's `dataset_root`, else the usual places).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Require a checkpoint to resume from (without it, a run directory with checkpoints resumes anyway).
    #[arg(long, conflicts_with = "restart")]
    resume: bool,
    /// Delete what the run directory holds and start over.
    #[arg(long)]
    restart: bool,
    /// Print only errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Executor {
    /// Worker processes on this machine.
    Local,
    /// A Slurm array job (sbatch), followed until it ends.
    Slurm,
}

#[derive(Debug, Args)]
struct SweepArgs {
    /// The grid file (`.toml`, or `.json`).
    grid: PathBuf,
    /// The sweep directory [default: sweeps/<grid file name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the runs run.
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    executor: Executor,
    /// Local: runs at once (worker processes).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Local: threads per run [default: the machine's cores / jobs].
    #[arg(long)]
    threads_per_job: Option<usize>,
    /// Only the slice i/N of the runs (0 <= i < N): for any external scheduler.
    #[arg(long)]
    shard: Option<Shard>,
    /// The folder of the dataset files, passed to every run.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// List the runs and their state; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print only failures and the final table.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    slurm: SlurmArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Slurm (--executor slurm)")]
struct SlurmArgs {
    /// sbatch --partition.
    #[arg(long)]
    partition: Option<String>,
    /// sbatch --gpus-per-task (give the runs a CUDA device in the spec: device = "cuda").
    #[arg(long)]
    gpus_per_task: Option<u32>,
    /// sbatch --cpus-per-task (also each run's thread count).
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// sbatch --mem (e.g. 8G).
    #[arg(long)]
    mem: Option<String>,
    /// sbatch --time (e.g. 02:00:00).
    #[arg(long)]
    time: Option<String>,
    /// sbatch --account.
    #[arg(long)]
    account: Option<String>,
    /// At most K array tasks at once (--array=0-N%K).
    #[arg(long)]
    max_parallel: Option<usize>,
    /// Runs per array task, run one after another.
    #[arg(long, default_value_t = 1)]
    runs_per_task: usize,
    /// More sbatch options, verbatim (repeatable): --sbatch-arg=--qos=high.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// The folder of sbatch, squeue, sacct [default: CL_SLURM_BIN, else PATH].
    #[arg(long)]
    slurm_bin: Option<PathBuf>,
    /// Submit and return (aggregate later with `cl aggregate OUT`).
    #[arg(long)]
    no_wait: bool,
    /// Seconds between two squeue polls.
    #[arg(long, default_value_t = 2.0)]
    poll: f64,
}

#[derive(Debug, Args)]
struct AggregateArgs {
    /// The sweep directory (or a folder of run directories).
    dir: PathBuf,
    /// Where to write aggregate.md/.json/.png [default: DIR].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// Spec or grid files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Run(args) => run(args),
        Commands::Sweep(args) => sweep(*args),
        Commands::Aggregate(args) => aggregate_command(args),
        Commands::Validate(args) => validate(args),
        Commands::Task { out, index, plan } => task(&out, index, &plan),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let bad_input = matches!(
                e,
                CliError::Parse { .. }
                    | CliError::Invalid { .. }
                    | CliError::Grid { .. }
                    | CliError::Usage(_)
                    | CliError::RunDirMismatch { .. }
                    | CliError::RunDirBusy { .. }
                    | CliError::NotARunDir { .. }
                    | CliError::NothingToResume { .. }
                    | CliError::SlurmMissing { .. }
            );
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

fn run(args: RunArgs) -> Result<()> {
    if is_grid(&parse_value(&read_text(&args.spec)?, Format::of(&args.spec), &args.spec)?) {
        return Err(CliError::Usage(format!(
            "{} is a grid (it has axis, seeds, base or spec): run it with `cl sweep {}`",
            args.spec.display(),
            args.spec.display()
        )));
    }
    let spec = load_spec(&args.spec)?;
    let run_dir = args.run_dir.unwrap_or_else(|| PathBuf::from("runs").join(spec.id()));
    let options = RunOptions { data_dir: args.data_dir, resume: args.resume, restart: args.restart, quiet: args.quiet };
    let outcome = execute(&spec, &run_dir, &options)?;
    let r = outcome.results();
    if !args.quiet {
        let what = match outcome {
            RunOutcome::Completed(_) => "complete",
            RunOutcome::AlreadyComplete(_) => "already complete",
        };
        let show = |x: Option<f64>| x.map_or("—".into(), |v| format!("{v:.4}"));
        println!(
            "{}: {what}: final average accuracy {}, forgetting {}, {:.1} s; results in {}",
            r.id,
            show(r.final_average_accuracy),
            show(r.forgetting),
            r.wall_time_s,
            run_dir.join("results.json").display()
        );
    }
    Ok(())
}

fn sweep(args: SweepArgs) -> Result<()> {
    let grid = Grid::load(&args.grid)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.grid.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or("sweep".into());
        PathBuf::from("sweeps").join(stem)
    });
    sweep::materialise(&grid, &out)?;
    let pending = sweep::pending(&grid, &out, args.shard);
    let selected = (0..grid.runs.len()).filter(|&i| sweep::in_shard(args.shard, i)).count();
    println!(
        "{}: {} runs{}, {} complete, {} to run; sweep directory {}",
        args.grid.display(),
        selected,
        args.shard.map(|s| format!(" in shard {}/{}", s.index, s.count)).unwrap_or_default(),
        selected - pending.len(),
        pending.len(),
        out.display()
    );
    if args.dry_run {
        for run in &grid.runs {
            let dir = sweep::run_dir(&out, &run.id);
            let state = if cl_cli::run::completed_results(&dir).is_some() {
                "complete".to_string()
            } else {
                cl_cli::run::read_status(&dir).map_or("not started".into(), |s| format!("{:?}", s.state).to_lowercase())
            };
            println!("  {}  {state}", run.id);
        }
        return Ok(());
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    match args.executor {
        Executor::Local => {
            if args.jobs == 0 {
                return Err(CliError::Usage("--jobs must be at least 1".into()));
            }
            if !pending.is_empty() {
                let threads = args.threads_per_job.unwrap_or((cores / args.jobs).max(1));
                let workers = Workers::current(args.data_dir.clone(), threads)?;
                let (_, timing) = sweep::run_local(&pending, &out, args.jobs, &workers, args.quiet);
                println!(
                    "{} runs in {:.1} s with {} jobs × {} threads; sum of the runs {:.1} s: speed-up {:.2}×, parallel \
                     efficiency {:.0} %",
                    timing.runs.len(),
                    timing.wall_time_s,
                    timing.jobs,
                    timing.threads_per_job,
                    timing.sum_of_runs_s,
                    timing.speedup,
                    timing.parallel_efficiency * 100.0
                );
                write_json(&out.join("timing.json"), &timing)?;
            }
        }
        Executor::Slurm => {
            if !pending.is_empty() {
                let options = slurm_options(&args.slurm);
                let workers = Workers::current(args.data_dir.clone(), args.slurm.cpus_per_task)?;
                let name = format!("cl-{}", args.grid.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default());
                let script = slurm::write_script(&out, &pending, &options, &workers, &name)?;
                let job = slurm::submit(&script, &options)?;
                println!("submitted {} as Slurm job {job} ({})", script.display(), out.join("slurm/logs").display());
                if options.no_wait {
                    println!("not waiting: `cl aggregate {}` when it has ended", out.display());
                    return Ok(());
                }
                slurm::follow(&job, &options)?;
            }
        }
    }
    finish(&grid, &out, args.shard)
}

/// Aggregates the sweep directory, prints the tables; an error naming the runs of `shard` (all
/// without one) that failed or did not complete.
fn finish(grid: &Grid, out: &Path, shard: Option<Shard>) -> Result<()> {
    let summary = aggregate(out)?;
    let written = summary.write(out)?;
    println!("{}", summary.markdown());
    println!("written: {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    let selected = grid.runs.iter().enumerate().filter(|(i, _)| sweep::in_shard(shard, *i));
    let not_done: Vec<String> = selected
        .filter(|(_, r)| cl_cli::run::completed_results(&sweep::run_dir(out, &r.id)).is_none())
        .map(|(_, r)| r.id.clone())
        .collect();
    if !not_done.is_empty() {
        let total = grid.runs.len();
        return Err(CliError::RunsFailed { failed: not_done.len(), total, ids: not_done });
    }
    Ok(())
}

fn slurm_options(args: &SlurmArgs) -> SlurmOptions {
    SlurmOptions {
        partition: args.partition.clone(),
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem.clone(),
        time: args.time.clone(),
        account: args.account.clone(),
        max_parallel: args.max_parallel,
        runs_per_task: args.runs_per_task,
        extra: args.sbatch_args.clone(),
        bin: args.slurm_bin.clone(),
        no_wait: args.no_wait,
        poll_s: args.poll,
    }
}

fn aggregate_command(args: AggregateArgs) -> Result<()> {
    let summary = aggregate(&args.dir)?;
    let written = summary.write(args.out.as_deref().unwrap_or(&args.dir))?;
    println!("{}", summary.markdown());
    println!("written: {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

fn validate(args: ValidateArgs) -> Result<()> {
    for file in &args.files {
        let value = parse_value(&read_text(file)?, Format::of(file), file)?;
        if is_grid(&value) {
            let grid = Grid::load(file)?;
            for run in &grid.runs {
                check_buildable(&run.spec).map_err(|e| in_file(file, &run.id, e))?;
            }
            println!("{}: a valid grid of {} runs", file.display(), grid.runs.len());
            for run in &grid.runs {
                println!("  {}", run.id);
            }
        } else {
            let spec = load_spec(file)?;
            check_buildable(&spec).map_err(|e| in_file(file, &spec.id(), e))?;
            println!("{}: a valid spec, run {}", file.display(), spec.id());
        }
    }
    Ok(())
}

/// An error of building run `id` of `file`, naming them.
fn in_file(file: &Path, id: &str, e: CliError) -> CliError {
    match e {
        CliError::Cl(source) => CliError::Invalid { path: file.to_path_buf(), run: Some(id.to_string()), source },
        other => other,
    }
}

fn task(out: &Path, index: usize, plan: &Path) -> Result<()> {
    let failed = slurm::run_task(out, index, plan)?;
    if failed.is_empty() {
        Ok(())
    } else {
        let ids: Vec<String> = failed.into_iter().map(|(id, _)| id).collect();
        Err(CliError::RunsFailed { failed: ids.len(), total: ids.len(), ids })
    }
}

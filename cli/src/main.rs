//! `driftwatch`: the command-line entry point.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use driftwatch_engine::config::Config;
use driftwatch_engine::live::{self, RunOptions};
use driftwatch_engine::memory::MemoryBound;
use driftwatch_engine::model::{build_reference_quality, build_references, Plan, Profile, PROFILE_VERSION};
use driftwatch_engine::pipeline::{create_output, replay, Outputs};
use driftwatch_generator::{GenerateArgs, Generator};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Streaming drift detection for ML models.
#[derive(Debug, Parser)]
#[command(name = "driftwatch", version, about)]
struct Cli {
    /// Log lines as `text` or `json` (one object per line) on standard
    /// error; which are written is set by `RUST_LOG` (default `info`;
    /// `warn`, or per target: `driftwatch_engine=debug,info`). Progress lines
    /// and summaries are not log lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Log lines through `tracing` on standard error, filtered by `RUST_LOG`
/// (`level`, or `target=level` pairs and a default level).
fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec
            .parse::<Targets>()
            .with_context(|| format!("RUST_LOG={spec:?}: expected a level (warn) or target=level pairs (driftwatch_engine=debug,info)"))?,
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry();
    match format {
        LogFormat::Text => registry.with(layer.with_filter(filter)).try_init(),
        LogFormat::Json => registry.with(layer.json().with_filter(filter)).try_init(),
    }
    .context("starting the log")
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file: schema, semantics, reference files and columns.
    Validate {
        /// The YAML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Build every model's reference profile (Parquet, CSV or JSONL through DataFusion) and write it.
    Profile {
        /// The YAML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Where to write the profile (JSON).
        #[arg(long)]
        output: PathBuf,
    },
    /// Replay a JSONL, CSV or Parquet file through the engine.
    Replay {
        /// The YAML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Events: .jsonl/.ndjson/.json (one JSON object per line), .csv or .parquet (flat rows).
        #[arg(long)]
        input: PathBuf,
        /// Label events (ground truth) for models with `quality`: JSONL, CSV or
        /// Parquet, merged with the predictions in event-time order.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Write every evaluation as a JSON line (`-` for stdout).
        #[arg(long)]
        output_evaluations: Option<PathBuf>,
        /// Write every drift / resolved event as a JSON line.
        #[arg(long)]
        output_events: Option<PathBuf>,
        /// Write events that could not be used, with the reason.
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// Shard threads (default: the config's, else the core count).
        #[arg(long)]
        shards: Option<usize>,
        /// Write the run's summary (counts, throughput, memory) as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Run the live pipeline: consume the configured Kafka source, serve
    /// /metrics, /healthz and /readyz, and send drift events to the sinks.
    Run {
        /// The YAML configuration.
        #[arg(long)]
        config: PathBuf,
        /// Shard threads (default: the config's, else the core count).
        #[arg(long)]
        shards: Option<usize>,
        /// Print a progress line every second (events/s, lag, drifting features, drift events).
        #[arg(long)]
        progress: bool,
        /// Address of the metrics endpoint (overrides `metrics.listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Also write every evaluation as a JSON line here.
        #[arg(long)]
        output_evaluations: Option<PathBuf>,
    },
    /// Write synthetic prediction traffic with known drift (to a file, stdout or a Kafka topic).
    Generate(GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_format) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate { config } => {
            let c = Config::from_file(&config)?;
            let plan = Plan::new(&c)?;
            // Everything replay and run refuse at startup: the references are
            // read and built (a column without a finite value, a profile that
            // does not fit), not only their schemas checked.
            c.check_secrets()?;
            let references = build_references(&c, &plan)?;
            let quality = build_reference_quality(&c, &plan)?;
            let mut out = String::new();
            writeln!(out, "{}: ok ({} model{})", config.display(), c.models.len(), if c.models.len() == 1 { "" } else { "s" })?;
            for (m, q) in c.models.iter().zip(&quality) {
                if let Some(cbpe) = &q.cbpe {
                    let (chunk, chunks) = cbpe.chunks();
                    writeln!(
                        out,
                        "model {:?}: cbpe fitted on {} reference rows; scores {}; band from {chunks} chunks of {chunk} rows",
                        m.name,
                        cbpe.rows(),
                        if cbpe.calibrates() { "calibrated (isotonic regression)" } else { "used as they are (calibrated already)" },
                    )?;
                }
            }
            writeln!(out, "{}", MemoryBound::new(&c, &plan, &references, c.engine.shard_count()))?;
            match std::io::stdout().lock().write_all(out.as_bytes()) {
                // Standard output closed by the reader (`driftwatch validate … | head`): nothing left to say.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                result => result.context("writing to standard output")?,
            }
            Ok(())
        }
        Command::Profile { config, output } => {
            let c = Config::from_file(&config)?;
            let plan = Plan::new(&c)?;
            let models: Vec<_> = build_references(&c, &plan)?.into_iter().flatten().collect();
            anyhow::ensure!(!models.is_empty(), "no model has a file or profile reference (baseline models build theirs from the stream)");
            let profile = Profile {
                version: PROFILE_VERSION,
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                models,
            };
            profile.save(&output)?;
            for m in &profile.models {
                eprintln!("{}: {} rows from {}", m.name, m.rows, m.source);
            }
            eprintln!("wrote {}", output.display());
            Ok(())
        }
        Command::Replay { config, input, labels, output_evaluations, output_events, dead_letter, shards, report } => {
            let c = Config::from_file(&config)?;
            let open = |p: &Option<PathBuf>| p.as_deref().map(create_output).transpose();
            let outputs =
                Outputs { evaluations: open(&output_evaluations)?, events: open(&output_events)?, dead_letter: open(&dead_letter)? };
            if labels.is_none() && c.models.iter().any(|m| m.quality.is_some()) {
                tracing::warn!("no --labels given: quality windows are evaluated without labels (coverage 0)");
            }
            let r = replay(&c, &input, labels.as_deref(), outputs, shards)?;
            let summary = serde_json::to_string_pretty(&r)?;
            if let Some(path) = report {
                std::fs::write(&path, &summary).with_context(|| format!("writing {}", path.display()))?;
            }
            eprintln!("{summary}");
            Ok(())
        }
        Command::Run { config, shards, progress, listen, output_evaluations } => {
            let c = Config::from_file(&config)?;
            let options = RunOptions { shards, progress, listen, output_evaluations, stop: Arc::new(AtomicBool::new(false)) };
            let summary = live::run(&c, options)?;
            eprintln!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Generate(args) => match (&args.kafka_brokers, &args.kafka_topic) {
            (Some(brokers), Some(topic)) => produce(&args, brokers, topic),
            _ => Ok(args.run()?),
        },
    }
}

/// `generate --kafka-brokers … --kafka-topic …`: produces the events (key:
/// the event index) at `--rate` events per second of wall time.
fn produce(args: &GenerateArgs, brokers: &str, topic: &str) -> anyhow::Result<()> {
    use driftwatch_connectors::kafka::{KafkaSink, KafkaSinkConfig};
    use driftwatch_connectors::webhook::SinkMetrics;
    let generator = Generator::new(args.config())?;
    let metrics = SinkMetrics::register(&prometheus::Registry::new())?;
    let options = [("linger.ms", "20"), ("batch.num.messages", "10000"), ("queue.buffering.max.messages", "200000")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    let config = KafkaSinkConfig { name: Some("generate".into()), brokers: brokers.into(), topic: topic.into(), options };
    let labels = args.label_spec()?;
    let sink = KafkaSink::start(&config, metrics.clone())?;
    let label_sink = match &args.labels_topic {
        Some(t) => Some((
            t,
            KafkaSink::start(
                &KafkaSinkConfig { name: Some("generate-labels".into()), topic: t.clone(), ..config.clone() },
                metrics.clone(),
            )?,
        )),
        None => None,
    };
    let mut queue = driftwatch_generator::LabelQueue::default();
    let send_labels = |queue: &mut driftwatch_generator::LabelQueue, until: Option<i64>| -> anyhow::Result<()> {
        if let Some((t, s)) = &label_sink {
            while let Some((j, line)) = queue.pop_until(until) {
                let key = format!("{}-{j}", args.model);
                anyhow::ensure!(s.send_blocking(&key, &line), "producing labels to {t} on {brokers} failed");
            }
        }
        Ok(())
    };
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    let mut last_report = Instant::now();
    for i in 0..args.events {
        buf.clear();
        let score = generator.write_event(i, &mut buf);
        anyhow::ensure!(sink.send_blocking(&i.to_string(), &buf), "producing to {topic} on {brokers} failed");
        if label_sink.is_some() {
            queue.push(&generator, i, score, &labels);
            send_labels(&mut queue, Some(generator.timestamp_ms(i)))?;
        }
        if args.rate > 0.0 && i % 100 == 0 {
            let due = Duration::from_secs_f64(i as f64 / args.rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("generate: {i} events produced to {topic}");
        }
    }
    send_labels(&mut queue, None)?;
    sink.flush(Duration::from_secs(60));
    if let Some((_, s)) = &label_sink {
        s.flush(Duration::from_secs(60));
    }
    let failed = metrics.events.with_label_values(&["generate", "failed"]).get()
        + metrics.events.with_label_values(&["generate-labels", "failed"]).get();
    anyhow::ensure!(failed == 0, "{failed} events could not be delivered to {topic}");
    eprintln!("generate: {} events produced to {topic} in {:.1} s", args.events, started.elapsed().as_secs_f64());
    Ok(())
}

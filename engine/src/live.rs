//! `driftwatch run`: the live front end of the pipeline. The same driver,
//! shards and window stage as replay (`pipeline::drive`), fed by the
//! configured source (a Kafka consumer group), with drift events delivered
//! to sinks and every series on `/metrics`.
//!
//! ```text
//! source thread ──batches──► shard threads ──decoded──► window stage (this thread)
//!  KafkaSource::run          decode, type-check          apply in poll order ─► evaluations ─► /metrics
//!  ▲        │ revoke: drain                                  │                 └► drift events ─► sinks
//!  └ commit ◄────────── applied offsets (per batch, in order) ┘
//! ```
//!
//! Labels (models with `quality`): the consumer reads `label_topics` too;
//! label messages ride in the same batches, are decoded by the shards'
//! label decoders and joined by the window stage in poll order, so their
//! offsets follow the same rule as the predictions'.
//!
//! Offsets: a batch's offsets are reported to the source only after the
//! window stage applied it; the source commits them every `commit_interval`,
//! synchronously before a revoke (after draining what it already handed
//! over) and at shutdown. What a crash can replay: the events after the last
//! commit (at most `commit_interval` of traffic plus the queues); windows
//! live in memory, so after a restart they fill again from the committed
//! offsets and nothing is counted twice within one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use driftwatch_connectors::kafka::{KafkaSink, KafkaSinkConfig};
use driftwatch_connectors::webhook::SinkMetrics;
use driftwatch_connectors::{Progress, SinkContext, SourceConfig, SourceContext};
use prometheus::Registry;

use crate::config::Config;
use crate::decode::Decoder;
use crate::metrics::EngineMetrics;
use crate::model::Plan;
use crate::pipeline::{create_output, drive, DriveOptions, Outputs, Summary, Tick};
use crate::stage::{End, Live, WindowStage};
use crate::window::ModelState;
use crate::{Error, Result};

/// Options of `driftwatch run` beyond the configuration file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Shard threads (default: the config's, else the core count).
    pub shards: Option<usize>,
    /// Print a progress line every second on standard error.
    pub progress: bool,
    /// Overrides `metrics.listen`.
    pub listen: Option<SocketAddr>,
    /// Also write every evaluation as a JSON line here.
    pub output_evaluations: Option<PathBuf>,
    /// Set to stop (Ctrl-C and SIGTERM set it too).
    pub stop: Arc<AtomicBool>,
}

pub(crate) fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Runs until `options.stop` is set (or a signal); returns the summary.
pub fn run(config: &Config, options: RunOptions) -> Result<Summary> {
    let started = Instant::now();
    let Some(source_config @ SourceConfig::Kafka(kafka)) = &config.source else {
        return Err(Error::Usage("`driftwatch run` needs a `source` in the configuration (type: kafka)".into()));
    };
    let plan = Arc::new(Plan::new(config)?);
    let decoder = Arc::new(Decoder::new(&plan.decoder)?);
    if let Some(m) = config.models.iter().find(|m| m.quality.is_some()) {
        if kafka.label_topics.is_empty() {
            return Err(Error::Usage(format!(
                "model {:?} has `quality`: set `source.label_topics` to the topics of its label events \
                 (or leave `quality` out of the live configuration)",
                m.name
            )));
        }
    }
    let mut models: Vec<ModelState> = crate::pipeline::model_states(config, &plan)?;
    models.iter_mut().for_each(ModelState::hold_quality_clock_to_predictions);

    let registry = Registry::new();
    let metrics = EngineMetrics::register(&registry)?;
    metrics.start_time.set(now_unix());
    let sink_metrics = SinkMetrics::register(&registry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("driftwatch-io")
        .enable_all()
        .build()
        .map_err(|e| Error::Io { path: "tokio runtime".into(), source: e })?;

    let context = SinkContext { runtime: runtime.handle(), metrics: &sink_metrics, registry: &registry };
    let sinks = config.sinks.iter().map(|s| s.build(&context)).collect::<Result<Vec<_>, _>>()?;
    let dead_letter_sink = match &kafka.dead_letter_topic {
        Some(topic) => {
            // Only the connection settings carry over from the consumer.
            let options = kafka
                .options
                .iter()
                .filter(|(k, _)| ["security.", "sasl.", "ssl.", "client."].iter().any(|p| k.starts_with(p)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let c = KafkaSinkConfig { name: Some("dead_letter".into()), brokers: kafka.brokers.clone(), topic: topic.clone(), options };
            Some(KafkaSink::start(&c, sink_metrics.clone())?)
        }
        None => None,
    };

    let progress = Arc::new(Progress::default());
    let source = source_config.build(&SourceContext { registry: &registry, progress: Arc::clone(&progress) })?;
    let handle = source.handle();

    let listen = match options.listen {
        Some(a) => a,
        None => config.metrics.listen.parse().map_err(|e| Error::Usage(format!("metrics.listen: {e}")))?,
    };
    let ready_handle = Arc::clone(&handle);
    let (bound, server) =
        runtime.block_on(driftwatch_connectors::http::serve(listen, registry.clone(), Arc::new(move || ready_handle.ready())))?;
    tracing::info!("serving /metrics, /healthz, /readyz on http://{bound}");
    let stop = Arc::clone(&options.stop);
    {
        let stop = Arc::clone(&stop);
        runtime.spawn(async move {
            wait_for_signal().await;
            stop.store(true, Ordering::Release);
        });
    }

    let outputs = Outputs { evaluations: options.output_evaluations.as_deref().map(create_output).transpose()?, ..Outputs::default() };
    let live = Live::new(&metrics, &sinks, dead_letter_sink.as_ref(), &models);
    let mut stage = WindowStage::new(models, outputs, None, Some(live));
    let (mut last_tick, mut last_events) = (Instant::now(), 0u64);
    let mut tick = |stage: &mut WindowStage<'_>, t: &Tick| {
        let rate = (t.events_read - last_events) as f64 / last_tick.elapsed().as_secs_f64();
        metrics.source_events.inc_by(t.events_read - last_events);
        (last_tick, last_events) = (Instant::now(), t.events_read);
        stage.tick(&t.queue_depths, rate);
        if options.progress {
            eprintln!("{}", stage.progress_line(t.events_read, rate, handle.lag().unwrap_or(0)));
        }
    };
    let drive_options = DriveOptions {
        shards: options.shards.unwrap_or_else(|| config.engine.shard_count()),
        stop,
        progress,
        end: End::Stopped,
        started,
        tick: Some(&mut tick),
    };
    let result = drive(config, &plan, &decoder, vec![source], &mut stage, drive_options);
    drop(stage);
    // Let the sinks deliver what is queued, then stop serving.
    for s in sinks {
        s.close(Duration::from_secs(5));
    }
    if let Some(dl) = dead_letter_sink {
        dl.flush(Duration::from_secs(5));
    }
    server.abort();
    result
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _interrupted = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _interrupted = tokio::signal::ctrl_c().await;
    }
}

//! End-to-end tests of `driftwatch run` on a real Kafka-protocol broker
//! (Tansu, started by `scripts/test.sh` on 127.0.0.1, address in
//! `DRIFTWATCH_TEST_BROKERS`) with a real HTTP receiver for the webhook sink.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

fn brokers() -> String {
    std::env::var("DRIFTWATCH_TEST_BROKERS").expect(
        "DRIFTWATCH_TEST_BROKERS is not set: run the suite with scripts/test.sh, which starts a local broker \
         (or `scripts/broker.sh start --port 19092` and export DRIFTWATCH_TEST_BROKERS=127.0.0.1:19092)",
    )
}

pub(crate) fn binary() -> PathBuf {
    // target/release/deps/integration-… → target/release/driftwatch
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("driftwatch");
    assert!(bin.exists(), "{} is missing: build with `cargo build --workspace --release --all-targets`", bin.display());
    bin
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// Client settings for the test broker; the TLS test passes its own.
fn plain_client() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers());
    c
}

fn create_topics(rt: &tokio::runtime::Runtime, topics: &[(&str, i32)]) {
    create_topics_with(&plain_client(), rt, topics)
}

fn create_topics_with(client: &ClientConfig, rt: &tokio::runtime::Runtime, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = client.create().unwrap();
    let new: Vec<NewTopic<'_>> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
    let results = rt.block_on(admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))).unwrap();
    for r in results {
        r.unwrap();
    }
}

fn producer() -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new().set("bootstrap.servers", brokers()).set("linger.ms", "5").create().unwrap()
}

/// Produces `driftwatch generate` events `range` (key: the event index).
fn produce_generated(topic: &str, events: u64, drift_start: u64, extra: &[&str]) {
    let mut args: Vec<String> = vec![
        "generate".into(),
        "--events".into(),
        events.to_string(),
        "--drift-start".into(),
        drift_start.to_string(),
        "--kafka-brokers".into(),
        brokers(),
        "--kafka-topic".into(),
        topic.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(binary()).args(&args).output().unwrap();
    assert!(out.status.success(), "generate failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every request a [`Receiver`] got: its headers and body.
type Requests = Arc<Mutex<Vec<(HashMap<String, String>, Vec<u8>)>>>;

/// A real HTTP receiver: records every request's headers and body, answers 200.
struct Receiver {
    addr: SocketAddr,
    requests: Requests,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    fn start(rt: &tokio::runtime::Runtime) -> Self {
        let requests: Requests = Arc::default();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Arc::clone(&requests);
        let task = rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let store = Arc::clone(&store);
                        async move {
                            let mut headers: HashMap<String, String> = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                                .collect();
                            headers.insert("x-received-at-micros".into(), chrono::Utc::now().timestamp_micros().to_string());
                            let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                            store.lock().unwrap().push((headers, body));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                });
            }
        });
        Self { addr, requests, _task: task }
    }

    fn events(&self) -> Vec<(HashMap<String, String>, Value)> {
        self.requests.lock().unwrap().iter().map(|(h, b)| (h.clone(), serde_json::from_slice(b).unwrap())).collect()
    }
}

fn received_at(headers: &HashMap<String, String>) -> i64 {
    headers["x-received-at-micros"].parse().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// The value of an unlabelled series (or the sum over a family's series) in a scrape.
fn metric_sum(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Engine {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Engine {
    fn start(dir: &Path, config: &str, extra: &[&str]) -> Self {
        Self::start_with_env(dir, config, extra, &[])
    }

    fn start_with_env(dir: &Path, config: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(&path, config).unwrap();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let stderr = std::fs::File::create(dir.join(format!("engine-{port}.log"))).unwrap();
        let stdout = std::fs::File::create(dir.join(format!("engine-{port}.out"))).unwrap();
        let mut args = vec!["run", "--config", path.to_str().unwrap(), "--listen", &listen, "--shards", "2"];
        args.extend_from_slice(extra);
        let child = Command::new(binary()).args(&args).envs(env.iter().copied()).stdout(stdout).stderr(stderr).spawn().unwrap();
        Self { child, port, dir: dir.to_owned() }
    }

    /// Waits until `/readyz` says ready (the group join assigned partitions).
    fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        while http_get(self.port, "/readyz").map(|r| r.0) != Some(200) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("engine exited ({status}):\n{}", self.log());
            }
            assert!(start.elapsed() < limit, "never ready: {:?}\n{}", http_get(self.port, "/readyz"), self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn scrape(&self) -> String {
        http_get(self.port, "/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("engine-{}.log", self.port))).unwrap_or_default()
    }

    /// Waits until `cond(scrape)` holds; panics with the engine's log after `limit`.
    fn wait_for(&mut self, what: &str, limit: Duration, cond: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let scrape = self.scrape();
            if cond(&scrape) {
                return scrape;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("engine exited ({status}) while waiting for {what}:\n{}", self.log());
            }
            assert!(start.elapsed() < limit, "timed out waiting for {what}\nlast scrape:\n{scrape}\nlog:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then waits for a clean exit (it drains, commits and leaves the group).
    fn stop(mut self) -> Value {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        let log = self.log();
        assert!(status.success(), "engine failed: {log}");
        // The summary is the last JSON object on stderr.
        let start = log.rfind("\n{").map_or(0, |i| i + 1);
        serde_json::from_str(&log[start..]).unwrap_or_else(|e| panic!("no summary ({e}) in:\n{log}"))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn committed_total(group: &str, topic: &str, partitions: i32) -> i64 {
    committed_total_with(&plain_client(), group, topic, partitions)
}

fn committed_total_with(client: &ClientConfig, group: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = client.clone().set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// Every message of a topic (from the beginning), with headers.
fn read_topic(topic: &str, partitions: i32, expected: usize) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    read_topic_with(&plain_client(), topic, partitions, expected)
}

fn read_topic_with(client: &ClientConfig, topic: &str, partitions: i32, expected: usize) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    let consumer: BaseConsumer = client.clone().set("group.id", unique("reader")).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < expected && start.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())).collect())
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    // A short grace period so that extra (unexpected) messages would be seen too.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push((m.payload().unwrap_or_default().to_vec(), BTreeMap::new()));
        }
    }
    out
}

const FEATURES: &str = r#"
      - { name: f00, type: numeric }
      - { name: f01, type: numeric }
      - { name: f02, type: numeric }
      - { name: f10, type: numeric }
      - { name: f11, type: numeric }
      - { name: c0, type: categorical }
      - { name: c1, type: categorical }"#;
const DRIFTED: &[&str] = &["f00", "f01", "f02", "c0"];

fn config(reference: &str, window: &str, topic: &str, group: &str, sinks: &str, dead_letter: Option<&str>) -> String {
    let dl = dead_letter.map(|t| format!("\n  dead_letter_topic: {t}")).unwrap_or_default();
    format!(
        r#"engine: {{ batch_events: 1024 }}
models:
  - name: fraud
    reference: {reference}
    window: {window}
    features:{FEATURES}
    detectors:
      - {{ metric: psi, threshold: 0.2 }}
      - {{ metric: ks, p_value: 0.001, threshold: 0.1, mode: sketch }}
      - {{ metric: chi2, p_value: 0.000001 }}  # p alone: strict, so chance cannot page anyone
    alerting: {{ consecutive: 3, recover_after: 2, dataset_drift_share: null }}
source:
  type: kafka
  brokers: {brokers}
  topics: [{topic}]
  group_id: {group}
  options: {{ session.timeout.ms: "6000", heartbeat.interval.ms: "500", fetch.wait.max.ms: "100" }}
  commit_interval: 200ms{dl}
sinks:
{sinks}
"#,
        brokers = brokers()
    )
}

/// Drift events by (feature, metric, type), checking none is for a stable feature.
fn check_events(events: &[Value]) -> BTreeMap<(String, String, String), usize> {
    let mut seen = BTreeMap::new();
    for e in events {
        let feature = e["feature"].as_str().unwrap().to_owned();
        assert!(DRIFTED.contains(&feature.as_str()), "drift event for a stable feature: {e}");
        *seen.entry((feature, e["metric"].as_str().unwrap().to_owned(), e["type"].as_str().unwrap().to_owned())).or_insert(0) += 1;
    }
    for ((f, m, t), n) in &seen {
        assert_eq!(*n, 1, "{n} {t} events for ({f}, {m})");
    }
    for f in DRIFTED {
        assert!(seen.keys().any(|(x, _, t)| x == f && t == "drift"), "no drift event for {f}: {seen:?}");
    }
    seen
}

#[test]
fn live_drift_reaches_webhook_and_kafka_and_offsets_are_committed() {
    let rt = runtime();
    let (topic, drift_topic, dl_topic, group) = (unique("predictions"), unique("drift"), unique("dead"), unique("group"));
    create_topics(&rt, &[(&topic, 4), (&drift_topic, 1), (&dl_topic, 1)]);
    let receiver = Receiver::start(&rt);
    let sinks = format!(
        "  - {{ type: webhook, url: \"http://{}/drift\", hmac_secret: s3cret }}\n  - {{ type: kafka, brokers: {}, topic: {drift_topic} }}",
        receiver.addr,
        brokers()
    );
    let dir = std::env::temp_dir().join(unique("dw-live"));
    // Event-time windows: several partitions are consumed interleaved, which count windows
    // would see as alternating drifted and clean stretches. Traffic is produced live (event
    // time ≈ wall time), as in production, so the partitions' skew stays well under the lateness.
    let mut engine = Engine::start(
        &dir,
        &config(
            "{ baseline_events: 10000 }",
            "{ type: sliding, duration: 400ms, slide: 100ms, allowed_lateness: 1s }",
            &topic,
            &group,
            &sinks,
            Some(&dl_topic),
        ),
        &[],
    );
    engine.wait_ready(Duration::from_secs(30));
    let events = 100_000u64;
    produce_generated(&topic, events, 50_000, &["--rate", "25000", "--events-per-second", "25000"]);
    // Bad messages mixed into the topic: malformed, unknown model, wrong type.
    let bad: Vec<&[u8]> = vec![
        b"{not json",
        br#"{"model":"nope","features":{"f00":1}}"#,
        b"\xff\xfe binary",
        br#"{"model":"fraud","features":{"f00":"high"}}"#,
    ];
    let p = producer();
    for (i, b) in bad.iter().enumerate() {
        p.send(BaseRecord::to(&topic).key(&format!("bad-{i}")).payload(*b)).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();
    let total = events + bad.len() as u64;

    let scrape = engine
        .wait_for("every event consumed", Duration::from_secs(90), |s| metric_sum(s, "driftwatch_source_events_total") >= total as f64);
    assert!(scrape.contains("driftwatch_feature_drift_state{"), "drift gauges missing:\n{scrape}");
    assert!(scrape.contains("driftwatch_model_drifting_features{model=\"fraud\"}"), "per-model drifting gauge missing:\n{scrape}");
    for stage in ["decode", "window"] {
        let line = format!("driftwatch_pipeline_stage_seconds_count{{stage=\"{stage}\"}} ");
        let count: f64 = scrape.lines().find_map(|l| l.strip_prefix(&line)).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        assert!(count > 0.0, "no {stage} stage timings:\n{scrape}");
    }
    // Offsets: committed group offsets reach the end of the topic.
    let start = Instant::now();
    while committed_total(&group, &topic, 4) < total as i64 {
        assert!(start.elapsed() < Duration::from_secs(30), "committed {} of {total}", committed_total(&group, &topic, 4));
        std::thread::sleep(Duration::from_millis(300));
    }
    // Webhook deliveries settle.
    engine.wait_for("webhook deliveries", Duration::from_secs(30), |s| {
        let delivered = s
            .lines()
            .filter(|l| {
                l.starts_with("driftwatch_sink_events_total{") && l.contains("outcome=\"delivered\"") && l.contains("sink=\"webhook\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        delivered > 0.0 && delivered as usize == receiver.events().len() && metric_sum(s, "driftwatch_sink_queue_events") == 0.0
    });
    let summary = engine.stop();
    assert_eq!(summary["events_read"].as_u64(), Some(total), "{summary}");
    let dead: u64 = summary["dead_letters"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(dead, bad.len() as u64, "{summary}");
    assert_eq!(
        summary["events_applied"].as_u64(),
        Some(events + 1),
        "good events (and the wrong-type one, partially) are all used: {summary}"
    );

    // The webhook got exactly one drift event per drifted (feature, metric), with the headers.
    let received = receiver.events();
    let bodies: Vec<Value> = received.iter().map(|(_, b)| b.clone()).collect();
    let seen = check_events(&bodies);
    let mut worst = 0.0f64;
    for (h, b) in &received {
        // Delivery latency: produced (ce-time, right after the window closed and was evaluated) → received.
        let produced = chrono::DateTime::parse_from_rfc3339(&h["ce-time"]).unwrap();
        worst = worst.max((received_at(h) - produced.timestamp_micros()) as f64 / 1e6);
        assert_eq!(h.get("idempotency-key"), b["event_id"].as_str().map(str::to_owned).as_ref());
        assert_eq!(h.get("ce-id"), h.get("idempotency-key"));
        assert_eq!(h.get("ce-specversion").map(String::as_str), Some("1.0"));
        assert!(h.get("x-driftwatch-signature").is_some_and(|s| s.starts_with("sha256=")));
    }
    println!("webhook delivery latency, worst of {}: {:.1} ms", received.len(), worst * 1000.0);
    assert!(worst < 1.0, "a drift event took {worst:.3} s to reach the webhook");
    // The Kafka drift topic holds the same events.
    let on_topic = read_topic(&drift_topic, 1, received.len());
    let ids = |v: &[Value]| v.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>();
    let topic_events: Vec<Value> = on_topic.iter().map(|(p, _)| serde_json::from_slice(p).unwrap()).collect();
    assert_eq!(ids(&topic_events), ids(&bodies));
    assert_eq!(topic_events.len(), bodies.len());
    assert!(!seen.is_empty());
    // The dead-letter topic holds the bad messages with their reasons.
    let dl = read_topic(&dl_topic, 1, bad.len());
    assert_eq!(dl.len(), bad.len(), "{dl:?}");
    let reasons: BTreeSet<String> = dl.iter().map(|(_, h)| h["driftwatch.reason"].clone()).collect();
    assert_eq!(reasons, ["malformed_json", "unknown_model", "wrong_type"].iter().map(|s| s.to_string()).collect(), "{dl:?}");
    for (payload, h) in &dl {
        assert_eq!(h["driftwatch.source.topic"], topic);
        assert!(bad.contains(&payload.as_slice()), "payload kept byte for byte");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restarted_engine_resumes_from_committed_offsets_and_still_reports_drift() {
    let rt = runtime();
    let (topic, group) = (unique("predictions"), unique("group"));
    create_topics(&rt, &[(&topic, 2)]);
    let receiver = Receiver::start(&rt);
    let dir = std::env::temp_dir().join(unique("dw-restart"));
    std::fs::create_dir_all(&dir).unwrap();
    // A file reference, so that a restart does not re-learn a baseline.
    let reference = dir.join("reference.csv");
    let out = Command::new(binary())
        .args([
            "generate",
            "--events",
            "1",
            "-o",
            "/dev/null",
            "--reference-output",
            reference.to_str().unwrap(),
            "--reference-rows",
            "20000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sinks = format!("  - {{ type: webhook, url: \"http://{}/drift\" }}", receiver.addr);
    let config = config(
        &format!("{{ path: {} }}", reference.display()),
        "{ type: sliding, duration: 400ms, slide: 100ms, allowed_lateness: 1s }",
        &topic,
        &group,
        &sinks,
        None,
    );
    let live = ["--rate", "25000", "--events-per-second", "25000"];
    // First run: 20 000 clean events, then a clean stop (drain, commit, leave the group).
    let mut first = Engine::start(&dir, &config, &[]);
    first.wait_ready(Duration::from_secs(30));
    produce_generated(&topic, 20_000, 1_000_000, &[&live[..], &["--seed", "7"]].concat());
    first.wait_for("the first part", Duration::from_secs(60), |s| metric_sum(s, "driftwatch_source_events_total") >= 20_000.0);
    let s1 = first.stop();
    assert_eq!(s1["events_read"].as_u64(), Some(20_000), "{s1}");
    assert_eq!(committed_total(&group, &topic, 2), 20_000, "everything applied at shutdown is committed");
    assert_eq!(s1["drift_events"].as_u64(), Some(0), "no drift in the clean part: {s1}");

    // Second run in the same group: 60 000 drifted events (2.4 s of event time: windows of
    // 400 ms close once the watermark, 1 s behind, passes them), produced while it runs.
    let mut second = Engine::start(&dir, &config, &[]);
    second.wait_ready(Duration::from_secs(30));
    produce_generated(&topic, 60_000, 0, &[&live[..], &["--seed", "8", "--start-time", "2026-11-23T00:00:01Z"]].concat());
    second.wait_for("the second part", Duration::from_secs(60), |s| metric_sum(s, "driftwatch_source_events_total") >= 60_000.0);
    second.wait_for("webhook deliveries", Duration::from_secs(30), |s| {
        metric_sum(s, "driftwatch_sink_queue_events") == 0.0 && metric_sum(s, "driftwatch_drift_events_total") > 0.0
    });
    let s2 = second.stop();
    assert_eq!(s2["events_read"].as_u64(), Some(60_000), "resumed exactly at the committed offsets, nothing read twice: {s2}");
    assert_eq!(committed_total(&group, &topic, 2), 80_000);
    let bodies: Vec<Value> = receiver.events().into_iter().map(|(_, b)| b).collect();
    check_events(&bodies);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn streaming_gives_the_same_evaluations_as_replay() {
    let rt = runtime();
    let (topic, group) = (unique("predictions"), unique("group"));
    // One partition: the stream's order is the file's order.
    create_topics(&rt, &[(&topic, 1)]);
    let dir = std::env::temp_dir().join(unique("dw-parity"));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("events.jsonl");
    let out = Command::new(binary())
        .args(["generate", "--events", "30000", "--drift-start", "15000", "-o", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let p = producer();
    let text = std::fs::read_to_string(&input).unwrap();
    for (i, line) in text.lines().enumerate() {
        loop {
            match p.send(BaseRecord::to(&topic).key(&i.to_string()).payload(line)) {
                Ok(()) => break,
                Err((_, _)) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let config =
        config("{ baseline_events: 5000 }", "{ type: sliding, events: 2000, slide: 500 }", &topic, &group, "  - { type: log }", None);
    let live_out = dir.join("live.jsonl");
    let mut engine = Engine::start(&dir, &config, &["--output-evaluations", live_out.to_str().unwrap()]);
    engine.wait_for("every event", Duration::from_secs(60), |s| metric_sum(s, "driftwatch_source_events_total") >= 30_000.0);
    engine.stop();
    let replay_out = dir.join("replay.jsonl");
    let out = Command::new(binary())
        .args([
            "replay",
            "--config",
            dir.join("config.yaml").to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output-evaluations",
            replay_out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let live = std::fs::read_to_string(&live_out).unwrap();
    let replayed = std::fs::read_to_string(&replay_out).unwrap();
    assert!(live.lines().count() > 100, "too few evaluations: {}", live.lines().count());
    assert!(live == replayed, "live and replay evaluations differ ({} vs {} lines)", live.lines().count(), replayed.lines().count());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_endpoint_serves_health_and_readiness() {
    let rt = runtime();
    let (topic, group) = (unique("predictions"), unique("group"));
    create_topics(&rt, &[(&topic, 1)]);
    let dir = std::env::temp_dir().join(unique("dw-health"));
    let config = config("{ baseline_events: 100 }", "{ type: tumbling, events: 100 }", &topic, &group, "  - { type: log }", None);
    let mut engine = Engine::start(&dir, &config, &[]);
    engine.wait_for("the endpoint", Duration::from_secs(30), |s| !s.is_empty());
    assert_eq!(http_get(engine.port, "/healthz").map(|r| r.0), Some(200));
    // Ready once the group join assigned the partition.
    engine.wait_ready(Duration::from_secs(30));
    assert_eq!(http_get(engine.port, "/nope").map(|r| r.0), Some(404));
    let scrape = engine.scrape();
    for family in [
        "driftwatch_source_events_total",
        "driftwatch_source_partition_assigned",
        "driftwatch_pipeline_event_latency_seconds_bucket",
        "driftwatch_process_start_time_seconds",
    ] {
        assert!(scrape.contains(family), "{family} missing:\n{scrape}");
    }
    // promtool, where installed (scripts/test.sh installs it), must find the scrape clean.
    if let Ok(mut child) =
        Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
    {
        child.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(std::env::var("DRIFTWATCH_REQUIRE_PROMTOOL").is_err(), "promtool is required but missing");
    }
    engine.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A broker that is down: the engine keeps serving `/metrics` and `/healthz`,
/// says why it is not ready on `/readyz`, logs the cause at most once per
/// 10 s (not per retry), and consumes by itself once a broker comes up on the
/// configured address. The broker here is a second Tansu on its own port and
/// state directory, started by the project's script.
#[test]
fn broker_outage_is_reported_and_recovered_from_without_a_restart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let (topic, group) = (unique("outage"), unique("group"));
    let dir = std::env::temp_dir().join(unique("dw-outage"));
    let config = config("{ baseline_events: 100 }", "{ type: tumbling, events: 100 }", &topic, &group, "  - { type: log }", None)
        .replace(&format!("brokers: {}", brokers()), &format!("brokers: {address}"))
        // The topic is created after the broker comes up: without a short
        // refresh, a consumer that connected in between would not see it
        // until librdkafka's next periodic metadata refresh (5 minutes).
        .replace(r#"fetch.wait.max.ms: "100" }"#, r#"fetch.wait.max.ms: "100", topic.metadata.refresh.interval.ms: "1000" }"#);
    assert!(config.contains(&address) && config.contains("topic.metadata.refresh.interval.ms"));
    let mut engine = Engine::start(&dir, &config, &[]);
    engine.wait_for("the endpoint", Duration::from_secs(30), |s| !s.is_empty());
    // Down for 6 s: serving, not ready, with the cause, and a quiet log.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(http_get(engine.port, "/healthz").map(|r| r.0), Some(200));
    let (status, body) = http_get(engine.port, "/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("kafka"), "{body}");
    assert!(engine.scrape().contains("driftwatch_source_events_total"));
    let kafka_lines = engine.log().lines().filter(|l| l.contains("kafka") || l.contains("librdkafka")).count();
    assert!((1..=2).contains(&kafka_lines), "expected the cause logged once per 10 s, got {kafka_lines} lines:\n{}", engine.log());

    // The broker comes up on that address; nothing is restarted.
    let broker = ScriptBroker { script: root.join("scripts/broker.sh"), dir: dir.join("broker") };
    let port_text = port.to_string();
    broker.run(&["start", "--port", &port_text]);
    broker.run(&["topic", "create", &topic, "--partitions", "1", "--port", &port_text]);
    let produced = Command::new(binary())
        .args(["generate", "--events", "500", "--kafka-brokers", &address, "--kafka-topic", &topic])
        .output()
        .unwrap();
    assert!(produced.status.success(), "{}", String::from_utf8_lossy(&produced.stderr));
    engine.wait_ready(Duration::from_secs(60));
    engine.wait_for("all 500 events", Duration::from_secs(60), |s| metric_sum(s, "driftwatch_source_events_total") == 500.0);
    let summary = engine.stop();
    drop(broker);
    assert_eq!(summary["events_applied"], 500, "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A broker started by `scripts/broker.sh` in its own state directory,
/// stopped when dropped (also when the test fails).
struct ScriptBroker {
    script: PathBuf,
    dir: PathBuf,
}

impl ScriptBroker {
    fn run(&self, args: &[&str]) {
        let out = Command::new(&self.script).args(args).env("BROKER_DIR", &self.dir).output().unwrap();
        assert!(out.status.success(), "broker.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for ScriptBroker {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").env("BROKER_DIR", &self.dir).output();
    }
}

/// Certificates for the TLS test, made with the `openssl` command: a CA, a
/// server certificate for 127.0.0.1 and a client certificate whose key is
/// encrypted with `password`.
struct Certs {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    password: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("the openssl command (Debian package openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Certs {
    fn make(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let ca = |name: &str| {
            let (key, crt, cn) = (format!("{name}.key"), format!("{name}.crt"), format!("/CN={name}"));
            openssl(dir, &[&["req", "-x509"], &ec[..], &["-nodes", "-keyout", &key, "-out", &crt, "-days", "2", "-subj", &cn]].concat());
        };
        ca("test-ca");
        ca("rogue-ca");
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(dir, &[&["req"], &ec[..], &["-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
        let sign = |csr: &str, crt: &str, ext: &[&str]| {
            let base =
                ["x509", "-req", "-in", csr, "-CA", "test-ca.crt", "-CAkey", "test-ca.key", "-CAcreateserial", "-out", crt, "-days", "2"];
            openssl(dir, &[&base[..], ext].concat());
        };
        sign("server.csr", "server.crt", &["-extfile", "server.ext"]);
        let password = format!("pw-{}", unique("key"));
        let pass = format!("pass:{password}");
        openssl(
            dir,
            &[&["req"], &ec[..], &["-keyout", "client.key", "-passout", &pass, "-out", "client.csr", "-subj", "/CN=driftwatch-client"]]
                .concat(),
        );
        sign("client.csr", "client.crt", &[]);
        Self {
            ca: dir.join("test-ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            password,
        }
    }

    /// librdkafka client settings, as pairs (the key's password inline).
    fn client_settings(&self, ca: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "ssl".into()),
            ("ssl.ca.location", ca.display().to_string()),
            ("ssl.certificate.location", self.client_cert.display().to_string()),
            ("ssl.key.location", self.client_key.display().to_string()),
            ("ssl.key.password", self.password.clone()),
        ]
    }

    /// The same settings for a driftwatch config's `options`, the password
    /// read from `$DW_TEST_KEY_PASSWORD`.
    fn options_yaml(&self, ca: &Path) -> String {
        self.client_settings(ca)
            .into_iter()
            .map(|(k, v)| if k == "ssl.key.password" { format!("{k}: {{ env: DW_TEST_KEY_PASSWORD }}") } else { format!("{k}: \"{v}\"") })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `scripts/tls_proxy.py`: TLS (client certificates required) in front of a
/// plaintext broker; every line it prints is kept.
struct TlsProxy {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl TlsProxy {
    fn start(script: &Path, listen: u16, upstream: u16, certs: &Certs) -> Self {
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--listen", &format!("127.0.0.1:{listen}"), "--upstream", &format!("127.0.0.1:{upstream}")])
            .arg("--cert")
            .arg(&certs.server_cert)
            .arg("--key")
            .arg(&certs.server_key)
            .arg("--client-ca")
            .arg(&certs.ca)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (stdout, store) = (child.stdout.take().unwrap(), Arc::clone(&lines));
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                store.lock().unwrap().push(line);
            }
        });
        let proxy = Self { child, lines };
        proxy.wait_for("listening", Duration::from_secs(10), |l| l.iter().any(|l| l.starts_with("listening")));
        proxy
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, limit: Duration, cond: impl Fn(&[String]) -> bool) {
        let start = Instant::now();
        while !cond(&self.lines()) {
            assert!(start.elapsed() < limit, "TLS proxy: timed out waiting for {what}: {:?}", self.lines());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kafka over mutual TLS, end to end: the source, the Kafka drift sink and
/// the dead-letter producer connect with TLS, verify the broker's certificate
/// against the configured CA, present a client certificate whose key's
/// password comes from the environment, and the password never shows; with
/// the wrong CA the engine refuses the broker, says why and counts it. Tansu
/// speaks plaintext, so `scripts/tls_proxy.py` terminates TLS in front of it
/// (client certificates required) and the broker advertises the proxy.
#[test]
fn kafka_over_mutual_tls_with_secrets_from_the_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let dir = std::env::temp_dir().join(unique("dw-tls"));
    let certs = Certs::make(&dir.join("certs"));
    let (plain, tls) = (free_port(), free_port());
    let broker = ScriptBroker { script: root.join("scripts/broker.sh"), dir: dir.join("broker") };
    broker.run(&["start", "--port", &plain.to_string(), "--advertise", &tls.to_string()]);
    let proxy = TlsProxy::start(&root.join("scripts/tls_proxy.py"), tls, plain, &certs);
    let address = format!("127.0.0.1:{tls}");
    let client = |extra: &[(&str, &str)]| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &address);
        for (k, v) in certs.client_settings(&certs.ca) {
            c.set(k, v);
        }
        for (k, v) in extra {
            c.set(*k, *v);
        }
        c
    };

    let rt = runtime();
    let (topic, drift_topic, dl_topic, group) = (unique("tls-predictions"), unique("tls-drift"), unique("tls-dead"), unique("group"));
    let tls_client = client(&[]);
    create_topics_with(&tls_client, &rt, &[(&topic, 1), (&drift_topic, 1), (&dl_topic, 1)]);

    let options = certs.options_yaml(&certs.ca);
    let sinks = format!("  - {{ type: kafka, brokers: \"{address}\", topic: {drift_topic}, options: {{ {options} }} }}");
    let yaml = config("{ baseline_events: 5000 }", "{ type: tumbling, events: 2500 }", &topic, &group, &sinks, Some(&dl_topic))
        .replace(&format!("brokers: {}\n", brokers()), &format!("brokers: \"{address}\"\n"))
        .replace(r#"fetch.wait.max.ms: "100" }"#, &format!(r#"fetch.wait.max.ms: "100", {options} }}"#));
    assert!(yaml.contains(&address) && yaml.contains("ssl.key.password: { env: DW_TEST_KEY_PASSWORD }"), "{yaml}");
    assert!(!yaml.contains(&certs.password));
    let env = [("DW_TEST_KEY_PASSWORD", certs.password.as_str())];

    // validate reads the password from the environment and has librdkafka check every setting.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("validate.yaml"), &yaml).unwrap();
    let validate = |env: &[(&str, &str)]| {
        Command::new(binary()).args(["validate", "--config"]).arg(dir.join("validate.yaml")).envs(env.iter().copied()).output().unwrap()
    };
    let out = validate(&env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = validate(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("DW_TEST_KEY_PASSWORD"), "{stderr}");

    let mut engine = Engine::start_with_env(&dir, &yaml, &[], &env);
    engine.wait_ready(Duration::from_secs(30));
    let events = 30_000u64;
    let file = dir.join("events.jsonl");
    let out = Command::new(binary())
        .args(["generate", "--events", &events.to_string(), "--drift-start", "15000", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "generate: {}", String::from_utf8_lossy(&out.stderr));
    let producer: ThreadedProducer<DefaultProducerContext> = client(&[("linger.ms", "5")]).create().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
    lines.push(b"{not json"); // one dead letter, produced over TLS by the engine
    for (i, line) in lines.iter().enumerate() {
        let key = i.to_string();
        let mut record = BaseRecord::to(&topic).key(&key).payload(*line);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("produce over TLS: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let total = lines.len() as f64;
    engine.wait_for("every event consumed over TLS", Duration::from_secs(90), |s| metric_sum(s, "driftwatch_source_events_total") >= total);
    let scrape_at_stop = engine.wait_for("the drift events and the dead letter delivered", Duration::from_secs(30), |s| {
        let delivered = |sink: &str| {
            s.lines()
                .filter(|l| l.starts_with("driftwatch_sink_events_total{") && l.contains("outcome=\"delivered\"") && l.contains(sink))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        delivered("sink=\"dead_letter\"") == 1.0 && delivered("sink=\"kafka\"") == metric_sum(s, "driftwatch_drift_events_total")
    });
    let summary = engine.stop();
    assert_eq!(summary["events_read"].as_u64(), Some(lines.len() as u64), "{summary}");

    // What went over TLS came back over TLS: the drift topic, the dead letter and the group's offsets.
    let emitted = metric_sum(&scrape_at_stop, "driftwatch_drift_events_total") as usize;
    let drift: Vec<Value> =
        read_topic_with(&tls_client, &drift_topic, 1, emitted).iter().map(|(p, _)| serde_json::from_slice(p).unwrap()).collect();
    assert_eq!(drift.len(), emitted, "every drift event on the topic");
    assert!(!check_events(&drift).is_empty());
    let dead = read_topic_with(&tls_client, &dl_topic, 1, 1);
    assert_eq!(dead.len(), 1, "the dead letter over TLS: {dead:?}");
    assert_eq!(committed_total_with(&tls_client, &group, &topic, 1), lines.len() as i64);

    // Every connection presented the client certificate; the password is nowhere in the engine's output.
    let accepted = proxy.lines().iter().filter(|l| l.as_str() == "accepted driftwatch-client").count();
    assert!(accepted >= 3, "expected the engine's consumer and producers among the TLS clients: {:?}", proxy.lines());
    assert!(!proxy.lines().iter().any(|l| l.starts_with("handshake failed")), "{:?}", proxy.lines());
    for f in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        if f.extension().is_some_and(|e| e == "log" || e == "out") {
            assert!(!std::fs::read_to_string(&f).unwrap().contains(&certs.password), "the key's password in {}", f.display());
        }
    }

    // The wrong CA: the broker's certificate is refused, the engine says so and counts it, never ready.
    let rogue = dir.join("certs/rogue-ca.crt");
    let yaml = yaml.replace(&certs.ca.display().to_string(), &rogue.display().to_string());
    let before = proxy.lines().len();
    let mut engine = Engine::start_with_env(&dir.join("rogue"), &yaml, &[], &env);
    let scrape = engine.wait_for("a TLS error", Duration::from_secs(30), |s| {
        s.lines().any(|l| l.starts_with("driftwatch_source_errors_total{kind=\"tls\"}") && !l.ends_with(" 0"))
    });
    let (status, body) = http_get(engine.port, "/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(metric_sum(&scrape, "driftwatch_source_events_total") == 0.0);
    proxy.wait_for("the refused handshake", Duration::from_secs(10), |l| l[before..].iter().any(|l| l.starts_with("handshake failed")));
    let log = engine.log();
    assert!(log.to_lowercase().contains("certificate"), "the cause is logged: {log}");
    assert!(!log.contains(&certs.password), "{log}");
    drop(engine);
    drop(proxy);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Realised quality of one window, computed here from the pairs directly:
/// accuracy, F1 and ROC AUC (Mann–Whitney, ties counted half).
fn window_quality(pairs: &[(f64, f64, f64)]) -> [f64; 3] {
    let n = pairs.len() as f64;
    let correct = pairs.iter().filter(|(y, p, _)| y == p).count() as f64;
    let tp = pairs.iter().filter(|(y, p, _)| *y == 1.0 && *p == 1.0).count() as f64;
    let fp = pairs.iter().filter(|(y, p, _)| *y == 0.0 && *p == 1.0).count() as f64;
    let fn_ = pairs.iter().filter(|(y, p, _)| *y == 1.0 && *p == 0.0).count() as f64;
    let positives: Vec<f64> = pairs.iter().filter(|t| t.0 == 1.0).map(|t| t.2).collect();
    let negatives: Vec<f64> = pairs.iter().filter(|t| t.0 == 0.0).map(|t| t.2).collect();
    let mut wins = 0.0;
    for &p in &positives {
        for &q in &negatives {
            wins += if p > q {
                1.0
            } else if p == q {
                0.5
            } else {
                0.0
            };
        }
    }
    [correct / n, 2.0 * tp / (2.0 * tp + fp + fn_), wins / (positives.len() as f64 * negatives.len() as f64)]
}

/// A deterministic stream of uniforms in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Labels from a second topic, minutes late and out of order, joined with
/// the predictions of a live run: each window's realised accuracy, F1 and
/// ROC AUC equal a direct computation on its joined pairs, an accuracy drop
/// injected from the fourth window on raises exactly one quality drift
/// event, and every join outcome (joined, early, orphan, duplicate,
/// expired, dead letter) is counted on `/metrics`.
#[test]
fn live_labels_from_a_second_topic_give_realised_quality_per_window() {
    let rt = runtime();
    let (predictions, labels, group, dead) = (unique("predictions"), unique("labels"), unique("group"), unique("dead"));
    create_topics(&rt, &[(&predictions, 1), (&labels, 2), (&dead, 1)]);
    let receiver = Receiver::start(&rt);
    let dir = std::env::temp_dir().join(unique("dw-live-quality"));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/quality/reference.csv");
    let reference = std::fs::read_to_string(&fixture).unwrap();
    std::fs::write(dir.join("reference.csv"), &reference).unwrap();
    let f0: Vec<f64> = reference.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();

    // 3 000 predictions, one a second: five 10-minute windows. From the
    // fourth window on, labels agree with the prediction 60 % of the time
    // instead of 92 %; 10 % of the predictions never get a label.
    let t0 = 1_767_225_600_000i64;
    let (n, window_ms) = (3000usize, 600_000i64);
    let mut rng = Lcg(7);
    let p = producer();
    let send = |p: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &str, payload: &str| loop {
        match p.send(BaseRecord::to(topic).key(key).payload(payload)) {
            Ok(()) => break,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let mut truth: Vec<Option<(f64, i64)>> = Vec::with_capacity(n);
    let mut predicted = Vec::with_capacity(n);
    for i in 0..n {
        let ts = t0 + i as i64 * 1000;
        let score = (rng.next() * 1000.0).round() / 1000.0;
        let class = f64::from(score >= 0.5);
        let agree = if ts - t0 < 3 * window_ms { 0.92 } else { 0.6 };
        let label = if rng.next() < agree { class } else { 1.0 - class };
        let delay = (rng.next() * 40.0 * 60_000.0) as i64;
        truth.push((rng.next() >= 0.1).then_some((label, ts + delay)));
        predicted.push((class, score, ts));
        let event = format!(
            r#"{{"model":"fraud","prediction_id":"p{i}","timestamp":{ts},"features":{{"f0":{}}},"prediction":{class},"score":{score}}}"#,
            f0[i % f0.len()]
        );
        send(&p, &predictions, &format!("p{i}"), &event);
    }
    p.flush(Duration::from_secs(30)).unwrap();

    let config = format!(
        r#"engine: {{ batch_events: 256 }}
models:
  - name: fraud
    reference: {{ path: reference.csv }}
    window: {{ type: tumbling, duration: 10m }}
    features:
      - {{ name: f0, type: numeric }}
    detectors:
      - {{ metric: psi, threshold: 0.5 }}
      - {{ metric: chi2, p_value: 0.0001 }}
    alerting: {{ consecutive: 1, recover_after: 2 }}
    quality:
      task: binary_classification
      prediction: prediction
      score: score
      reference: {{ label: repaid, prediction: y_pred, score: y_pred_proba }}
      metrics: [accuracy, f1, roc_auc]
      label_ttl: 2h
      early_label_ttl: 1h
      estimate: cbpe
      detectors:
        - {{ metric: accuracy, min: 0.8 }}
source:
  type: kafka
  brokers: {brokers}
  topics: [{predictions}]
  label_topics: [{labels}]
  group_id: {group}
  options: {{ session.timeout.ms: "6000", heartbeat.interval.ms: "500", fetch.wait.max.ms: "100" }}
  commit_interval: 200ms
  dead_letter_topic: {dead}
sinks:
  - {{ type: webhook, url: "http://{addr}/events" }}
"#,
        brokers = brokers(),
        addr = receiver.addr,
    );
    let out = dir.join("evaluations.jsonl");
    let mut engine = Engine::start(&dir, &config, &["--output-evaluations", out.to_str().unwrap()]);
    engine.wait_for("every prediction", Duration::from_secs(60), |s| metric_sum(s, "driftwatch_window_events_total") >= n as f64);

    // The labels, all after their predictions here: in a shuffled order,
    // keyed by prediction id (so a duplicate follows its original in its
    // partition), then 30 duplicates with the other class (the first label
    // wins), 20 for ids never predicted, and 4 unusable ones.
    let mut order: Vec<usize> = (0..n).filter(|&i| truth[i].is_some()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() * (i + 1) as f64) as usize);
    }
    let label_line =
        |id: &str, label: f64, ts: i64| format!(r#"{{"model":"fraud","prediction_id":"{id}","label":{label},"timestamp":{ts}}}"#);
    let mut sent = 0u64;
    for &i in &order {
        let (label, ts) = truth[i].unwrap();
        send(&p, &labels, &format!("p{i}"), &label_line(&format!("p{i}"), label, ts));
        sent += 1;
    }
    for &i in order.iter().take(30) {
        let (label, ts) = truth[i].unwrap();
        send(&p, &labels, &format!("p{i}"), &label_line(&format!("p{i}"), 1.0 - label, ts + 1000));
        sent += 1;
    }
    for k in 0..20 {
        send(&p, &labels, &format!("ghost{k}"), &label_line(&format!("ghost{k}"), 1.0, t0 + k * 1000));
        sent += 1;
    }
    let bad = [
        "not json".to_owned(),
        format!(r#"{{"model":"fraud","prediction_id":"p5","label":"maybe","timestamp":{t0}}}"#),
        format!(r#"{{"model":"fraud","label":1,"timestamp":{t0}}}"#),
        format!(r#"{{"model":"ghost","prediction_id":"p6","label":1,"timestamp":{t0}}}"#),
    ];
    for b in &bad {
        send(&p, &labels, "bad", b);
        sent += 1;
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let joined = order.len() as f64;
    let label_outcome = |s: &str, outcome: &str| {
        s.lines()
            .filter(|l| l.starts_with("driftwatch_labels_total{") && l.contains(&format!("outcome=\"{outcome}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    engine.wait_for("every label", Duration::from_secs(60), |s| {
        ["joined", "duplicate", "early", "dead_letter"].iter().map(|o| label_outcome(s, o)).sum::<f64>() >= sent as f64
    });
    let scrape = engine.scrape();
    assert_eq!(label_outcome(&scrape, "joined"), joined, "{scrape}");
    assert_eq!(label_outcome(&scrape, "duplicate"), 30.0);
    assert_eq!(label_outcome(&scrape, "early"), 20.0);
    assert_eq!(label_outcome(&scrape, "dead_letter"), 4.0);
    assert!(scrape.contains("driftwatch_labels_total{model=\"fraud\",outcome=\"dead_letter\"} 2"), "{scrape}");
    assert_eq!(metric_sum(&scrape, "driftwatch_label_delay_seconds_count"), joined);
    assert_eq!(metric_sum(&scrape, "driftwatch_label_join_pending"), (n - order.len()) as f64);
    // Per window: its (label, predicted, score) pairs and their accuracy, F1 and ROC AUC.
    type Pairs = Vec<(f64, f64, f64)>;
    let windows: Vec<(Pairs, [f64; 3])> = (0..5i64)
        .map(|w| {
            let start = t0 + w * window_ms;
            let pairs: Vec<(f64, f64, f64)> = (0..n)
                .filter(|&i| predicted[i].2 >= start && predicted[i].2 < start + window_ms)
                .filter_map(|i| truth[i].map(|(label, _)| (label, predicted[i].0, predicted[i].1)))
                .collect();
            let quality = window_quality(&pairs);
            (pairs, quality)
        })
        .collect();

    // A prediction past every window's end plus label_ttl: the five windows
    // become final, the unlabelled predictions expire, the ids never
    // predicted are orphans.
    let late = t0 + 3 * 3_600_000;
    send(
        &p,
        &predictions,
        "flush",
        &format!(r#"{{"model":"fraud","prediction_id":"flush","timestamp":{late},"features":{{"f0":0.1}},"prediction":0,"score":0.2}}"#),
    );
    p.flush(Duration::from_secs(30)).unwrap();
    let scrape = engine.wait_for("final windows", Duration::from_secs(60), |s| label_outcome(s, "expired") >= (n - order.len()) as f64);
    assert_eq!(label_outcome(&scrape, "expired"), (n - order.len()) as f64);
    assert_eq!(label_outcome(&scrape, "orphan"), 20.0);
    // The gauges show the newest window with labels: the fifth.
    let gauge = |name: &str, labels: &str| {
        let prefix = format!("{name}{{{labels}}} ");
        scrape.lines().find_map(|l| l.strip_prefix(&prefix)?.parse::<f64>().ok()).unwrap_or_else(|| panic!("no {prefix}in\n{scrape}"))
    };
    assert_eq!(gauge("driftwatch_model_quality", r#"metric="accuracy",model="fraud""#), windows[4].1[0]);
    assert_eq!(gauge("driftwatch_model_label_coverage_ratio", r#"model="fraud""#), windows[4].0.len() as f64 / 600.0);
    let start = Instant::now();
    while !receiver.events().iter().any(|(_, e)| e["kind"] == "quality") && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let summary = engine.stop();
    assert_eq!(summary["labels"]["models"]["fraud"]["joined"], joined as u64, "{summary}");
    assert_eq!(summary["labels"]["read"], sent, "{summary}");

    let text = std::fs::read_to_string(&out).unwrap();
    let mut last: BTreeMap<(i64, String), Value> = BTreeMap::new();
    let mut estimates: Vec<Value> = Vec::new();
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["kind"] == "quality" {
            last.insert((e["window"]["start_ms"].as_i64().unwrap(), e["metric"].as_str().unwrap().to_owned()), e);
        } else if e["kind"] == "estimated_quality" {
            estimates.push(e);
        }
    }
    // One estimate per window and metric, made at its close (before its labels: the labels were sent later),
    // and the gauges show the newest window's.
    assert_eq!(estimates.len(), 5 * 3, "{estimates:?}");
    for (w, e) in estimates.iter().enumerate().filter(|(_, e)| e["metric"] == "accuracy") {
        assert_eq!(e["window"]["start_ms"], t0 + (w / 3) as i64 * window_ms, "{e}");
        assert_eq!((&e["final"], &e["status"]), (&Value::from(true), &Value::from("ok")), "{e}");
        let (lower, value, upper) = (e["lower"].as_f64().unwrap(), e["value"].as_f64().unwrap(), e["upper"].as_f64().unwrap());
        assert!(lower < value && value < upper && value > 0.5, "{e}");
    }
    // Label drift of the newest window (its final evaluation), on /metrics as the column `label` of kind `label`.
    let label_lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|e| e["kind"] == "label").collect();
    let newest_end = label_lines.iter().map(|e| e["window"]["end_ms"].as_i64().unwrap()).max().unwrap();
    assert_eq!(newest_end, t0 + 5 * window_ms);
    let label = label_lines.iter().rfind(|e| e["window"]["end_ms"] == newest_end).unwrap();
    assert_eq!(
        (&label["feature"], &label["metric"], &label["final"]),
        (&Value::from("label"), &Value::from("chi2"), &Value::from(true)),
        "{label}"
    );
    assert_eq!(
        gauge("driftwatch_feature_drift_score", r#"feature="label",kind="label",metric="chi2",model="fraud""#),
        label["value"].as_f64().unwrap()
    );
    let newest = estimates.iter().rev().find(|e| e["metric"] == "accuracy").unwrap();
    for (gauge_name, field) in [
        ("driftwatch_model_quality_estimated", "value"),
        ("driftwatch_model_quality_estimated_lower", "lower"),
        ("driftwatch_model_quality_estimated_upper", "upper"),
    ] {
        assert_eq!(gauge(gauge_name, r#"metric="accuracy",model="fraud""#), newest[field].as_f64().unwrap(), "{gauge_name}");
    }
    for (w, (pairs, expected)) in windows.iter().enumerate() {
        let start = t0 + w as i64 * window_ms;
        for (metric, &want) in ["accuracy", "f1", "roc_auc"].iter().zip(expected) {
            let e = &last[&(start, metric.to_string())];
            let got = e["value"].as_f64().unwrap();
            assert!((got - want).abs() <= 1e-12, "window {w} {metric}: {got} vs {want}");
            assert_eq!(e["final"], true, "{e}");
            assert_eq!(e["labelled"], pairs.len() as u64);
            assert!((e["coverage"].as_f64().unwrap() - pairs.len() as f64 / 600.0).abs() < 1e-12, "{e}");
            assert_eq!(e["window"]["count"], 600);
        }
    }
    // Exactly one quality drift event, accuracy, for the fourth window.
    let quality: Vec<Value> = receiver.events().into_iter().map(|(_, e)| e).filter(|e| e["kind"] == "quality").collect();
    assert_eq!(quality.len(), 1, "{quality:?}");
    assert_eq!(quality[0]["type"], "drift");
    assert_eq!(quality[0]["metric"], "accuracy");
    assert_eq!(quality[0]["window"]["start_ms"], t0 + 3 * window_ms, "{}", quality[0]);
    // The labels' offsets are committed; the unusable ones reached the dead-letter topic.
    assert_eq!(committed_total(&group, &labels, 2), sent as i64);
    let dead_letters = read_topic(&dead, 1, 4);
    assert_eq!(dead_letters.len(), 4);
    assert!(dead_letters.iter().all(|(_, h)| h.get("driftwatch.input").map(String::as_str) == Some("labels")), "{dead_letters:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Kafka source seeks: each partition with a position starts right
/// after it (not at the group's committed offset), the handle reports the
/// applied positions, and the final commit covers exactly what was applied.
#[test]
fn kafka_source_starts_after_the_positions_it_is_sought_to() {
    use driftwatch_connectors::{BatchPool, Feed, Position, Progress, SourceConfig, SourceContext};
    use std::sync::atomic::{AtomicBool, Ordering};

    let rt = runtime();
    let topic = unique("seek");
    let group = unique("seek-group");
    create_topics(&rt, &[(&topic, 2)]);
    let producer = producer();
    for partition in 0..2 {
        for i in 0..20 {
            let payload = format!("{{\"p\":{partition},\"i\":{i}}}");
            producer.send(BaseRecord::<(), str>::to(&topic).partition(partition).payload(&payload)).unwrap();
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let config: SourceConfig = serde_json::from_value(serde_json::json!({
        "type": "kafka", "brokers": brokers(), "topics": [topic], "group_id": group, "batch_wait": "50ms"
    }))
    .unwrap();
    let registry = prometheus::Registry::new();
    let progress = Arc::new(Progress::default());
    let mut source = config.build(&SourceContext { registry: &registry, progress: Arc::clone(&progress) }).unwrap();
    assert!(!source.bounded());
    let at = |partition: i32, offset: i64| Position { stream: topic.clone(), partition, offset };
    // A position of a topic the source does not read is not its business.
    source.seek(&[at(0, 9), at(1, 14), Position { stream: "other".into(), partition: 0, offset: 3 }]).unwrap();
    let handle = source.handle();
    let (stop, pool) = (AtomicBool::new(false), BatchPool::new(4, 100));
    let mut got: BTreeSet<(i32, i64)> = BTreeSet::new();
    let mut positions = Vec::new();
    let started = Instant::now();
    let mut emit = |b: driftwatch_connectors::Batch| {
        for i in 0..b.len() {
            let (stream, partition) = handle.stream(b.partition(i).unwrap()).unwrap();
            assert_eq!(stream, topic);
            assert!(got.insert((partition, b.number(i) as i64)), "offset delivered twice");
        }
        handle.applied(&b.positions());
        positions = handle.positions();
        if got.len() >= 15 || started.elapsed() > Duration::from_secs(60) {
            stop.store(true, Ordering::Release);
        }
        true
    };
    let mut feed = Feed::new(&pool, 1000, &stop, &progress, &mut emit);
    source.run(&mut feed).unwrap();
    let want: BTreeSet<(i32, i64)> = (10..20).map(|o| (0, o)).chain((15..20).map(|o| (1, o))).collect();
    assert_eq!(got, want, "each partition starts right after its position");
    assert_eq!(positions, [at(0, 19), at(1, 19)], "the handle reports the last applied offsets");
    assert!(handle.positions().is_empty(), "closed: the partitions are revoked, the source holds none");
    assert_eq!(committed_total(&group, &topic, 2), 40, "the final commit is the next offset of each partition");
}

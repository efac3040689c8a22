//! Load and per-call overhead of the guarded client, against a server on loopback.
//!
//! ```text
//! cargo run --release --example load -- [--concurrency N] [--seconds S] [--target URL]
//! cargo run --release --example load -- --compare [--pairs P] [--slice S] [--concurrency N] [--target URL]
//! cargo run --release --example load -- --calls N --side guarded|plain [--target URL]
//! ```
//!
//! The guarded side is set up as in production: a [`Client`] with a [`CredentialsCache`] over
//! expiring STS credentials (so the cache's expiry check runs on every call) and a [`Guard`] with
//! a state directory (in a temporary directory).
//!
//! The server is the nginx at `--target` (loopback only; `bench/nginx.sh start` starts one), else
//! an in-process hyper mock on a thread and runtime of its own (`benches/support/mock_server.rs`).
//!
//! **Sustained load** (default): `N` tasks calling for `S` seconds; calls per second, latency
//! percentiles, peak resident memory.
//!
//! **`--compare`** (issue 15): in one process and on one tokio runtime (the client's; its
//! threads are named `load-client`), slices of `S` seconds (default 0.25) with `N` calls in
//! flight alternate between side A, the guarded `Client::call`, and side B, plain reqwest
//! posting the same pre-signed body with the same headers to a pre-parsed URL (and decoding the
//! JSON answer, as the client does). `P` pairs (default 24) run in ABBA order after a warm-up.
//! Each pair gives a throughput ratio A/B; the median and interquartile range of those ratios
//! are the result. An A/A control (plain reqwest against a second plain reqwest client, same
//! slicing, interleaved with the pairs) should sit at about 1.00: its spread says how far to
//! trust the run. Client CPU per call counts only the client runtime's threads (from
//! `/proc/self/task/*/schedstat`), not the mock's.
//!
//! With **`--fresh-body`**, the plain sides copy the pre-signed body into a new buffer on every
//! call, as a client that signs each call must send new bytes: the comparison then leaves out
//! what fresh bytes cost (allocating them, the kernel copying lines no other call has touched)
//! and shows the cost of the rest. A diagnostic: the issue's target is set against the shared
//! body.
//!
//! **`--side S`** with sustained load: only that side (`guarded`, the default, or `plain`),
//! for a native profile of either (`bench/profile.sh`).
//!
//! **`--calls N --side S`**: `N` sequential calls of one side on a current-thread runtime, no
//! slicing: for instruction counts (`bench/callgrind.sh` runs it for two values of `N`).

#[path = "../benches/support/mock_server.rs"]
mod mock_server;
#[path = "../benches/support/paired.rs"]
mod paired;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aliyun_guard::credentials::{CredentialsCache, StaticProvider};
use aliyun_guard::{Client, Credentials, Guard, Method, RpcRequest};
use bytes::Bytes;
use paired::Side;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

/// The name of the client runtime's threads, whose CPU time `--compare` counts.
const CLIENT_THREAD: &str = "load-client";
const USAGE: &str = "usage: load [--concurrency N] [--seconds S] [--target URL] [--workers W] [--side guarded|plain]\n\
       load --compare [--pairs P] [--slice SECONDS] [--concurrency N] [--target URL] [--workers W] [--fresh-body]\n\
       load --calls N --side guarded|plain [--target URL]";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Guarded,
    Plain,
}

struct Args {
    concurrency: usize,
    seconds: f64,
    method: Method,
    compare: bool,
    pairs: usize,
    slice: f64,
    workers: Option<usize>,
    target: Option<String>,
    calls: Option<u64>,
    side: Option<Which>,
    fresh_body: bool,
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| format!("{flag} {value:?}: {e}"))
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        concurrency: 64,
        seconds: 10.0,
        method: Method::Post,
        compare: false,
        pairs: 24,
        slice: 0.25,
        workers: None,
        target: None,
        calls: None,
        side: None,
        fresh_body: false,
    };
    let mut argv = argv.into_iter();
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--concurrency" | "-c" => args.concurrency = number(&flag, &value()?)?,
            "--seconds" | "-s" => args.seconds = number(&flag, &value()?)?,
            "--method" => args.method = value()?.parse()?,
            "--compare" => args.compare = true,
            "--fresh-body" => args.fresh_body = true,
            "--pairs" => args.pairs = number(&flag, &value()?)?,
            "--slice" => args.slice = number(&flag, &value()?)?,
            "--workers" => args.workers = Some(number(&flag, &value()?)?),
            "--target" => args.target = Some(value()?),
            "--calls" => args.calls = Some(number(&flag, &value()?)?),
            "--side" => {
                args.side = Some(match value()?.as_str() {
                    "guarded" | "a" | "A" => Which::Guarded,
                    "plain" | "b" | "B" => Which::Plain,
                    other => return Err(format!("--side {other:?}: expected guarded or plain")),
                })
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if !(1..=4096).contains(&args.concurrency) {
        return Err("--concurrency must be from 1 to 4096".into());
    }
    if !(args.seconds.is_finite() && (0.01..=3600.0).contains(&args.seconds)) {
        return Err("--seconds must be from 0.01 to 3600".into());
    }
    if !(args.slice.is_finite() && (0.01..=60.0).contains(&args.slice)) {
        return Err("--slice must be from 0.01 to 60 seconds".into());
    }
    if !(1..=100_000).contains(&args.pairs) {
        return Err("--pairs must be from 1 to 100000".into());
    }
    if args.workers.is_some_and(|w| !(1..=256).contains(&w)) {
        return Err("--workers must be from 1 to 256".into());
    }
    match (args.calls, args.side) {
        (Some(0), _) => return Err("--calls must be above 0".into()),
        (Some(_), None) => return Err("--calls needs --side guarded|plain".into()),
        (None, Some(_)) if args.compare => {
            return Err("--side goes with --calls N or sustained load".into());
        }
        (Some(_), Some(_)) if args.compare => {
            return Err("--calls and --compare are separate modes".into());
        }
        _ => {}
    }
    if args.method != Method::Post && (args.compare || args.calls.is_some() || args.side.is_some())
    {
        return Err("--compare, --calls and --side send POST only".into());
    }
    if let Some(target) = &args.target {
        args.target = Some(loopback_origin(target)?);
    }
    Ok(args)
}

/// `http://HOST:PORT` of a loopback URL; anything else is refused (this tool only ever calls a
/// server on this machine).
fn loopback_origin(target: &str) -> Result<String, String> {
    let url = url::Url::parse(target).map_err(|e| format!("--target {target:?}: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "http" || !loopback || url.path() != "/" || url.query().is_some() {
        return Err(format!(
            "--target {target:?}: expected http://127.0.0.1:PORT (plain HTTP on loopback, no path)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// The two callers: the guarded client and plain reqwest with a pre-signed body.
#[derive(Clone)]
enum Caller {
    Guarded {
        client: Client,
        request: Arc<RpcRequest>,
    },
    Plain {
        http: reqwest::Client,
        url: reqwest::Url,
        body: Bytes,
        /// Post a freshly allocated copy of the body on every call (`--fresh-body`).
        fresh: bool,
    },
}

impl Caller {
    async fn call(&self) -> bool {
        match self {
            Caller::Guarded { client, request } => client.call(request).await.is_ok(),
            Caller::Plain {
                http,
                url,
                body,
                fresh,
            } => {
                let body = if *fresh {
                    Bytes::from(body.to_vec())
                } else {
                    body.clone()
                };
                let sent = http
                    .post(url.clone())
                    .header(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/x-www-form-urlencoded"),
                    )
                    .body(body)
                    .send()
                    .await;
                let Ok(response) = sent else { return false };
                if !response.status().is_success() {
                    return false;
                }
                let Ok(bytes) = response.bytes().await else {
                    return false;
                };
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok()
            }
        }
    }
}

/// Everything the run needs, built once.
struct Setup {
    guarded: Caller,
    plain: Caller,
    /// A second, separate plain client for the A/A control.
    plain_again: Caller,
    server: String,
    server_note: String,
    mock: Option<mock_server::FastMock>,
    /// Holds the guard's state directory for the length of the run.
    _state_dir: tempfile::TempDir,
}

fn plain_http() -> reqwest::Client {
    // As the guarded client builds its own pool: same timeouts, User-Agent, no redirects.
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(aliyun_guard::USER_AGENT_VALUE)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

fn setup(args: &Args) -> Result<Setup, String> {
    let (server, server_note, mock) = match &args.target {
        Some(origin) => (
            origin.clone(),
            format!("external server at {origin} (e.g. nginx from bench/nginx.sh)"),
            None,
        ),
        None => {
            let mock = mock_server::start(1);
            (
                mock.url.clone(),
                format!(
                    "in-process hyper mock at {} (own thread and runtime, not counted as client CPU)",
                    mock.url
                ),
                Some(mock),
            )
        }
    };
    // Expiring STS credentials (a year ahead, well outside the refresh margin): every call
    // takes the cache's expiring path.
    let credentials = Credentials::new(
        "STS.LoadTestTemporaryKey00",
        "load-test-secret-0123456789ab",
    )
    .with_security_token("load-test-security-token")
    .with_expiry(time::OffsetDateTime::now_utc() + time::Duration::days(365))
    .with_parent_key_id("LTAI5tLoadTestParentKeyx");
    let state_dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let guard = Guard::builder()
        .state_dir(state_dir.path())
        .build()
        .map_err(|e| format!("guard: {e}"))?;
    let client = Client::builder()
        .credentials_cache(CredentialsCache::new(StaticProvider::new(
            credentials.clone(),
        )))
        .guard(Arc::new(guard))
        .endpoint(&server)
        .build()
        .map_err(|e| format!("client: {e}"))?;
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
        .region("cn-hangzhou")
        .method(args.method);
    let body = aliyun_guard::signing::Signer::new()
        .sign(&request.clone().method(Method::Post), &credentials)
        .into_encoded_params();
    let url = reqwest::Url::parse(&format!("{server}/")).map_err(|e| format!("url: {e}"))?;
    let body = Bytes::from(body);
    let plain = |http| Caller::Plain {
        http,
        url: url.clone(),
        body: body.clone(),
        fresh: args.fresh_body,
    };
    Ok(Setup {
        guarded: Caller::Guarded {
            client,
            request: Arc::new(request),
        },
        plain: plain(plain_http()),
        plain_again: plain(plain_http()),
        server,
        server_note,
        mock,
        _state_dir: state_dir,
    })
}

fn client_runtime(workers: Option<usize>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name(CLIENT_THREAD);
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    builder.build().expect("runtime")
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let setup = match setup(&args) {
        Ok(setup) => setup,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    if let (Some(calls), Some(side)) = (args.calls, args.side) {
        return sequential(&setup, calls, side);
    }
    let runtime = client_runtime(args.workers);
    if args.compare {
        compare(&args, &runtime, &setup)
    } else {
        sustained(&args, &runtime, &setup)
    }
}

/// `calls` sequential calls of one side on a current-thread runtime (for instruction counts).
fn sequential(setup: &Setup, calls: u64, side: Which) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let caller = match side {
        Which::Guarded => &setup.guarded,
        Which::Plain => &setup.plain,
    };
    let failed = runtime.block_on(async {
        let mut failed = 0u64;
        for _ in 0..calls {
            if !caller.call().await {
                failed += 1;
            }
        }
        failed
    });
    println!(
        "{calls} sequential {} calls against {}: {failed} failed",
        match side {
            Which::Guarded => "guarded",
            Which::Plain => "plain reqwest",
        },
        setup.server
    );
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unavailable".into())
}

/// CPU time used so far by the client runtime's threads (named [`CLIENT_THREAD`]), in
/// nanoseconds, from `/proc/self/task/<tid>/schedstat` (Linux; `None` elsewhere). Threads that
/// ended take their time with them; the runtime's workers live as long as the run.
fn client_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        // A thread may end between the listing and the reads: skip it.
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim_end() != CLIENT_THREAD {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)])
}

fn sustained(args: &Args, runtime: &tokio::runtime::Runtime, setup: &Setup) -> ExitCode {
    println!(
        "aliyun-guard load: {} concurrent tasks for {} s, {}\nserver: {}",
        args.concurrency, args.seconds, args.method, setup.server_note
    );
    let caller = match args.side {
        Some(Which::Plain) => &setup.plain,
        _ => &setup.guarded,
    };
    let (latencies, errors, elapsed) = runtime.block_on(async {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(args.seconds);
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let caller = caller.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(16 * 1024);
                    let mut errors = 0u64;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        if caller.call().await {
                            latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32)
                        } else {
                            errors += 1
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (latencies, e) = task.await.expect("task");
            all.extend(latencies);
            errors += e;
        }
        (all, errors, started.elapsed())
    });
    let mut sorted = latencies;
    sorted.sort_unstable();
    let calls = sorted.len() as f64;
    println!("calls:        {} ok, {errors} errors", sorted.len());
    println!("throughput:   {:.0} calls/s", calls / elapsed.as_secs_f64());
    println!(
        "latency:      p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(0)
    );
    let whose = if setup.mock.is_some() {
        "client and mock server together"
    } else {
        "client only"
    };
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak memory:  {:.1} MiB (VmHWM, {whose})",
            kib as f64 / 1024.0
        ),
        None => println!("peak memory:  unavailable on this platform"),
    }
    if let Some(mock) = &setup.mock {
        println!("server saw:   {} requests", mock.requests());
    }
    println!("load average: {}", load_average());
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// What one slice measured.
#[derive(Clone, Copy, Default)]
struct Slice {
    calls: u64,
    failed: u64,
    seconds: f64,
    cpu_ns: Option<u64>,
}

impl Slice {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.seconds
    }

    fn cpu_us_per_call(&self) -> Option<f64> {
        (self.calls > 0).then_some(())?;
        Some(self.cpu_ns? as f64 / 1_000.0 / self.calls as f64)
    }
}

/// `concurrency` tasks on the client runtime, each calling in a loop until the slice's end.
fn run_slice(
    runtime: &tokio::runtime::Runtime,
    caller: &Caller,
    concurrency: usize,
    seconds: f64,
) -> Slice {
    let cpu_before = client_cpu_ns();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let (calls, failed) = runtime.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let caller = caller.clone();
                tokio::spawn(async move {
                    // At least one call per task, however late the task starts.
                    let (mut ok, mut failed) = (0u64, 0u64);
                    loop {
                        if caller.call().await {
                            ok += 1;
                        } else {
                            failed += 1;
                        }
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        let (mut ok, mut failed) = (0, 0);
        for task in tasks {
            let (o, f) = task.await.unwrap_or((0, 1));
            ok += o;
            failed += f;
        }
        (ok, failed)
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu_ns = match (cpu_before, client_cpu_ns()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Slice {
        calls,
        failed,
        seconds,
        cpu_ns,
    }
}

/// One ABBA pair of slices of `a` and `b`.
fn run_pair(
    runtime: &tokio::runtime::Runtime,
    index: usize,
    (a, b): (&Caller, &Caller),
    concurrency: usize,
    seconds: f64,
) -> (Slice, Slice) {
    let (mut sa, mut sb) = (Slice::default(), Slice::default());
    for side in paired::abba(index) {
        match side {
            Side::A => sa = run_slice(runtime, a, concurrency, seconds),
            Side::B => sb = run_slice(runtime, b, concurrency, seconds),
        }
    }
    (sa, sb)
}

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

fn fmt_spread(values: &[f64]) -> String {
    match paired::quartiles(values) {
        Some((low, mid, high)) => {
            format!(
                "median {mid:.3}, IQR {low:.3} to {high:.3} (n={})",
                values.len()
            )
        }
        None => "no data".into(),
    }
}

/// Sum of CPU over sum of calls for one side's slices, in µs per call.
fn cpu_per_call(slices: &[Slice]) -> Option<f64> {
    let calls: u64 = slices.iter().map(|s| s.calls).sum();
    let cpu: Option<u64> = slices.iter().map(|s| s.cpu_ns).sum();
    (calls > 0).then_some(())?;
    Some(cpu? as f64 / 1_000.0 / calls as f64)
}

fn compare(args: &Args, runtime: &tokio::runtime::Runtime, setup: &Setup) -> ExitCode {
    let workers = runtime.metrics().num_workers();
    println!(
        "aliyun-guard load --compare: {} pairs of {} s slices in ABBA order, {} in flight, \
         one process, one client runtime ({workers} worker threads)",
        args.pairs, args.slice, args.concurrency
    );
    println!("server: {}", setup.server_note);
    println!(
        "A: guarded Client::call (CredentialsCache over expiring STS credentials, guard with a state directory)"
    );
    println!(
        "B: plain reqwest, the same pre-signed body and headers to a pre-parsed URL, JSON decoded{}",
        if args.fresh_body {
            " (body copied into a new buffer on every call: --fresh-body)"
        } else {
            ""
        }
    );
    println!("control: plain reqwest A' against a second plain reqwest client B', same slicing");
    println!(
        "CPU: client runtime threads only ('{CLIENT_THREAD}', /proc/self/task/*/schedstat){}",
        if client_cpu_ns().is_some() {
            ""
        } else {
            ": unavailable on this platform"
        }
    );
    println!("load average before: {}", load_average());
    // Warm-up: connections open, allocator and caches warm, for every caller.
    for caller in [&setup.guarded, &setup.plain, &setup.plain_again] {
        run_slice(runtime, caller, args.concurrency, args.slice);
    }
    println!(
        "\npair  order  A calls/s  B calls/s    A/B  CPU µs/call A     B    A/B   control A'/B'"
    );
    let mut main = Vec::with_capacity(args.pairs);
    let mut control = Vec::with_capacity(args.pairs);
    for index in 0..args.pairs {
        let (a, b) = run_pair(
            runtime,
            index,
            (&setup.guarded, &setup.plain),
            args.concurrency,
            args.slice,
        );
        let (ca, cb) = run_pair(
            runtime,
            index,
            (&setup.plain, &setup.plain_again),
            args.concurrency,
            args.slice,
        );
        let cpu_ratio = match (a.cpu_us_per_call(), b.cpu_us_per_call()) {
            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
            _ => None,
        };
        println!(
            "{:>4}  {}  {:>9.0}  {:>9.0}  {:.3}  {:>13}  {:>5}  {:>5}  {:.3}",
            index + 1,
            if paired::abba(index)[0] == Side::A {
                "A B  "
            } else {
                "B A  "
            },
            a.rate(),
            b.rate(),
            a.rate() / b.rate(),
            fmt_opt(a.cpu_us_per_call(), 1),
            fmt_opt(b.cpu_us_per_call(), 1),
            fmt_opt(cpu_ratio, 3),
            ca.rate() / cb.rate(),
        );
        main.push((a, b));
        control.push((ca, cb));
    }
    let rates = |pairs: &[(Slice, Slice)]| {
        paired::ratios(
            &pairs
                .iter()
                .map(|(a, b)| (a.rate(), b.rate()))
                .collect::<Vec<_>>(),
        )
    };
    let cpu_ratios: Vec<(f64, f64)> = main
        .iter()
        .filter_map(|(a, b)| Some((a.cpu_us_per_call()?, b.cpu_us_per_call()?)))
        .collect();
    let a_slices: Vec<Slice> = main.iter().map(|p| p.0).collect();
    let b_slices: Vec<Slice> = main.iter().map(|p| p.1).collect();
    let (cpu_a, cpu_b) = (cpu_per_call(&a_slices), cpu_per_call(&b_slices));
    println!("\nthroughput A/B per pair:   {}", fmt_spread(&rates(&main)));
    println!(
        "A/A control A'/B':         {}   (should be about 1.00; its spread is the run's noise)",
        fmt_spread(&rates(&control))
    );
    println!(
        "client CPU per call:       A {} µs, B {} µs, ratio {}   (all slices: CPU sum / calls)",
        fmt_opt(cpu_a, 1),
        fmt_opt(cpu_b, 1),
        fmt_opt(cpu_a.zip(cpu_b).map(|(a, b)| a / b), 3),
    );
    println!(
        "CPU A/B per pair:          {}",
        fmt_spread(&paired::ratios(&cpu_ratios))
    );
    let median_rate = |slices: &[Slice]| {
        paired::median(&slices.iter().map(Slice::rate).collect::<Vec<_>>()).unwrap_or(0.0)
    };
    println!(
        "median throughput:         A {:.0} calls/s, B {:.0} calls/s",
        median_rate(&a_slices),
        median_rate(&b_slices)
    );
    println!("load average after:  {}", load_average());
    let failed: u64 = main
        .iter()
        .chain(&control)
        .map(|(a, b)| a.failed + b.failed)
        .sum();
    let empty = main.iter().any(|(a, b)| a.calls == 0 || b.calls == 0);
    if failed > 0 || empty {
        eprintln!(
            "error: {failed} calls failed{}",
            if empty {
                ", and a slice completed no call"
            } else {
                ""
            }
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn bad_flags_are_errors_not_panics() {
        for bad in [
            &["--concurrency", "0"][..],
            &["--concurrency", "x"],
            &["--slice", "NaN"],
            &["--slice", "-1"],
            &["--pairs", "0"],
            &["--pairs"],
            &["--calls", "10"],
            &["--compare", "--side", "plain"],
            &["--side", "plain", "--method", "GET"],
            &["--calls", "10", "--side", "both"],
            &["--compare", "--calls", "10", "--side", "plain"],
            &["--target", "http://example.com:80"],
            &["--target", "https://127.0.0.1:8443"],
            &["--target", "http://127.0.0.1:80/path"],
            &["--bogus"],
        ] {
            assert!(args(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_loopback_target_becomes_an_origin() {
        let parsed = args(&["--compare", "--target", "http://127.0.0.1:8080/"]).unwrap();
        assert_eq!(parsed.target.as_deref(), Some("http://127.0.0.1:8080"));
        let parsed = args(&["--target", "http://localhost:9000"]).unwrap();
        assert_eq!(parsed.target.as_deref(), Some("http://localhost:9000"));
        let parsed = args(&["--calls", "5", "--side", "guarded"]).unwrap();
        assert_eq!((parsed.calls, parsed.side), (Some(5), Some(Which::Guarded)));
        // Sustained load of one side (for a native profile of either).
        let parsed = args(&["--side", "plain", "--seconds", "2"]).unwrap();
        assert_eq!((parsed.calls, parsed.side), (None, Some(Which::Plain)));
    }
}

//! Drives concurrent guarded calls against an embedded mock endpoint and reports what the client
//! sustains.
//!
//! ```text
//! cargo run --release --example load -- [--concurrency N] [--seconds S] [--method GET|POST]
//! cargo run --release --example load -- --compare [--rounds R] [--concurrency N] [--seconds S]
//! ```
//!
//! Prints calls per second, p50/p99/max latency, errors, and the process's peak resident memory
//! (VmHWM; the mock endpoint runs in the same process, so this is an upper bound for the client).
//!
//! `--compare` alternates rounds of the guarded client and of plain reqwest sending the same
//! pre-signed request (same body and headers) to the same server, the two taking turns going
//! first. It prints each round, the median throughput of each side with their ratio, the median
//! and interquartile range of the rounds' own ratios (pairing cancels drift on a shared
//! machine), and the process's CPU time per call for each side.
//! Only the embedded loopback endpoint is ever called.

#[path = "../benches/support/mock_server.rs"]
mod mock_server;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aliyun_guard::{Client, Credentials, Method, RpcRequest};

struct Args {
    concurrency: usize,
    seconds: u64,
    method: Method,
    compare: bool,
    rounds: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        concurrency: 64,
        seconds: 10,
        method: Method::Post,
        compare: false,
        rounds: 6,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--concurrency" | "-c" => {
                args.concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--seconds" | "-s" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--method" => args.method = value()?.parse()?,
            "--compare" => args.compare = true,
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.concurrency == 0 || args.seconds == 0 || args.seconds > 3600 || args.rounds == 0 {
        return Err(
            "--concurrency and --rounds must be above 0 and --seconds from 1 to 3600".into(),
        );
    }
    Ok(args)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time used so far by all threads of this process, in nanoseconds (Linux; `None` elsewhere).
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
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

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!(
                "usage: load [--concurrency N] [--seconds S] [--method GET|POST] [--compare [--rounds R]]"
            );
            return ExitCode::from(2);
        }
    };
    let server = mock_server::start(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = Client::builder()
        .credentials(Credentials::new(
            "LTAI5tLoadTestKey000wxyz",
            "load-test-secret-0123456789ab",
        ))
        .endpoint(&server.url)
        .build()
        .expect("client");
    let request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
        .region("cn-hangzhou")
        .method(args.method);
    if args.compare {
        return compare(&args, &runtime, &client, &request, &server.url);
    }
    println!(
        "aliyun-guard load: {} concurrent tasks for {} s against {} ({})",
        args.concurrency, args.seconds, server.url, args.method
    );
    let (latencies, errors, elapsed) = runtime.block_on(async {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.seconds);
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| {
                let client = client.clone();
                let request = request.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(16 * 1024);
                    let mut errors = 0u64;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        match client.call(&request).await {
                            Ok(_) => {
                                latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32)
                            }
                            Err(_) => errors += 1,
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
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak memory:  {:.1} MiB (VmHWM, client and mock server together)",
            kib as f64 / 1024.0
        ),
        None => println!("peak memory:  unavailable on this platform"),
    }
    println!("server saw:   {} requests", server.requests());
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Calls per second of `concurrency` tasks each running `call` in a loop for `seconds`, and the
/// process's CPU time per call in microseconds (client and mock server together).
async fn throughput<F, Fut>(concurrency: usize, seconds: f64, call: F) -> (f64, Option<f64>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let cpu_before = process_cpu_ns();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut ok = 0u64;
                while Instant::now() < deadline {
                    if call().await {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap_or(0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, process_cpu_ns()) {
        (Some(before), Some(after)) if total > 0 => {
            Some(after.saturating_sub(before) as f64 / 1_000.0 / total as f64)
        }
        _ => None,
    };
    (total as f64 / elapsed, cpu)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// First quartile, median and third quartile.
fn quartiles(values: &mut [f64]) -> (f64, f64, f64) {
    let mid = median(values); // sorts them
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.25), mid, at(0.75))
}

fn compare(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    request: &RpcRequest,
    url: &str,
) -> ExitCode {
    use aliyun_guard::signing::Signer;
    let plain = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    let body = Signer::new()
        .sign(
            &request.clone().method(Method::Post),
            &Credentials::new("LTAI5tLoadTestKey000wxyz", "load-test-secret-0123456789ab"),
        )
        .into_encoded_params();
    let url: std::sync::Arc<str> = format!("{url}/").into();
    let body = bytes::Bytes::from(body);
    println!(
        "round   guarded calls/s   plain reqwest calls/s   ratio   CPU µs/call: guarded   plain"
    );
    let (mut guarded, mut baseline, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut guarded_cpu, mut baseline_cpu) = (Vec::new(), Vec::new());
    let seconds = args.seconds as f64 / 2.0;
    // Each side clones only reference-counted handles per call.
    let request = std::sync::Arc::new(request.clone());
    let run_guarded = || {
        let (client, request) = (client.clone(), request.clone());
        runtime.block_on(throughput(args.concurrency, seconds, move || {
            let (client, request) = (client.clone(), request.clone());
            async move { client.call(&request).await.is_ok() }
        }))
    };
    let run_plain = || {
        let (plain, body, url) = (plain.clone(), body.clone(), url.clone());
        runtime.block_on(throughput(args.concurrency, seconds, move || {
            let (plain, body, url) = (plain.clone(), body.clone(), url.clone());
            async move {
                let Ok(response) = plain
                    .post(&*url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("user-agent", aliyun_guard::USER_AGENT_VALUE)
                    .body(body)
                    .send()
                    .await
                else {
                    return false;
                };
                let Ok(bytes) = response.bytes().await else {
                    return false;
                };
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok()
            }
        }))
    };
    for round in 1..=args.rounds {
        // The two sides take turns going first, so that neither always follows the other.
        let ((g, g_cpu), (p, p_cpu)) = if round % 2 == 1 {
            let g = run_guarded();
            (g, run_plain())
        } else {
            let p = run_plain();
            (run_guarded(), p)
        };
        let cpu = |c: Option<f64>| c.map_or_else(|| "-".to_string(), |c| format!("{c:.1}"));
        println!(
            "{round:>5}   {g:>15.0}   {p:>21.0}   {:.3}   {:>20}   {:>5}",
            g / p,
            cpu(g_cpu),
            cpu(p_cpu)
        );
        guarded.push(g);
        baseline.push(p);
        ratios.push(g / p);
        guarded_cpu.extend(g_cpu);
        baseline_cpu.extend(p_cpu);
    }
    let (g, p) = (median(&mut guarded), median(&mut baseline));
    if g == 0.0 || p == 0.0 {
        eprintln!("error: a side completed no call (guarded {g:.0}/s, plain {p:.0}/s)");
        return ExitCode::from(1);
    }
    let cpu = if guarded_cpu.is_empty() || baseline_cpu.is_empty() {
        String::new()
    } else {
        format!(
            "   {:>20.1}   {:>5.1}",
            median(&mut guarded_cpu),
            median(&mut baseline_cpu)
        )
    };
    println!("median  {g:>15.0}   {p:>21.0}   {:.3}{cpu}", g / p);
    let (low, mid, high) = quartiles(&mut ratios);
    println!(
        "ratio of each round's pair: median {mid:.3}, interquartile {low:.3} to {high:.3}\n\
         ({} tasks, {} rounds of {seconds:.1} s per side; CPU: the whole process, client and mock server)",
        args.concurrency, args.rounds,
    );
    ExitCode::SUCCESS
}

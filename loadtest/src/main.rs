//! mc-load: shoal's own bounded load generator for the memcached text
//! protocol. Every run is bounded in both operations and time, and only
//! loopback targets are accepted.
//!
//!   mc-load --server 127.0.0.1:11211 --conns 8 --pipeline 16 --ratio 1:10 --seconds 5

use clap::Parser;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "mc-load",
    about = "bounded memcached text-protocol load generator"
)]
struct Args {
    /// target (must be a loopback address)
    #[arg(long, default_value = "127.0.0.1:11211")]
    server: SocketAddr,
    /// connections (one thread each)
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// requests in flight per connection
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
    /// set:get ratio
    #[arg(long, default_value = "1:10")]
    ratio: String,
    /// key space size
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// value size in bytes
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// stop after this many seconds
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// stop after this many operations per connection
    #[arg(long, default_value_t = 5_000_000)]
    max_ops: u64,
}

#[derive(Default)]
struct Report {
    ops: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

fn parse_ratio(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once(':').ok_or("ratio must be SET:GET")?;
    Ok((
        a.parse().map_err(|_| "bad ratio")?,
        b.parse().map_err(|_| "bad ratio")?,
    ))
}

fn worker(args: Args, id: usize, stop: Arc<AtomicBool>) -> std::io::Result<Report> {
    let (sets, gets) = parse_ratio(&args.ratio).map_err(std::io::Error::other)?;
    let stream = TcpStream::connect(args.server)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let value = vec![b'v'; args.value_size];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut rep = Report::default();
    let mut line = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) && rep.ops < args.max_ops {
        let mut req = Vec::with_capacity(args.pipeline * 64);
        let mut kinds = Vec::with_capacity(args.pipeline);
        for _ in 0..args.pipeline {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = rng % args.keys;
            let is_set = n % (sets + gets) < sets;
            n += 1;
            if is_set {
                req.extend_from_slice(format!("set k{key} 0 0 {}\r\n", value.len()).as_bytes());
                req.extend_from_slice(&value);
                req.extend_from_slice(b"\r\n");
            } else {
                req.extend_from_slice(format!("get k{key}\r\n").as_bytes());
            }
            kinds.push(is_set);
        }
        let t0 = Instant::now();
        w.write_all(&req)?;
        for is_set in kinds {
            line.clear();
            r.read_until(b'\n', &mut line)?;
            if is_set {
                if line != b"STORED\r\n" {
                    rep.errors += 1;
                }
            } else {
                loop {
                    if line == b"END\r\n" {
                        break;
                    }
                    if !line.starts_with(b"VALUE ") {
                        rep.errors += 1;
                        break;
                    }
                    let len: usize = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|l| l.trim_end().rsplit(' ').next()?.parse().ok())
                        .unwrap_or(0);
                    let mut data = vec![0; len + 2];
                    r.read_exact(&mut data)?;
                    line.clear();
                    r.read_until(b'\n', &mut line)?;
                }
            }
            rep.ops += 1;
        }
        rep.latencies_us
            .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    Ok(rep)
}

fn main() {
    let args = Args::parse();
    if !args.server.ip().is_loopback() {
        eprintln!("mc-load only targets loopback addresses");
        std::process::exit(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..args.conns)
        .map(|i| {
            let (a, s) = (args.clone(), stop.clone());
            std::thread::spawn(move || worker(a, i, s))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut total = Report::default();
    let mut failed = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(r)) => {
                total.ops += r.ops;
                total.errors += r.errors;
                total.latencies_us.extend(r.latencies_us);
            }
            Ok(Err(e)) => {
                eprintln!("connection failed: {e}");
                failed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let pct = |p: f64| {
        total
            .latencies_us
            .get(
                ((total.latencies_us.len() as f64 * p) as usize)
                    .min(total.latencies_us.len().saturating_sub(1)),
            )
            .copied()
            .unwrap_or(0)
    };
    println!(
        "ops={} ops/s={:.0} errors={} failed_conns={} batch_p50_us={} batch_p99_us={}",
        total.ops,
        total.ops as f64 / secs,
        total.errors,
        failed,
        pct(0.5),
        pct(0.99)
    );
    if total.errors > 0 || failed > 0 || total.ops == 0 {
        std::process::exit(1);
    }
}

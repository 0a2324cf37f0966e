//! Introspection cost per key operation, on a Zipf-ish (s = 1) stream over
//! 100k keys shaped like `user:NNNNNNNN` (90 % gets, 10 % sets):
//!
//! * `shard_op/off`: a `Shard` get/set with introspection off (the cost the
//!   hook adds is one branch on `Shard::introspect`);
//! * `shard_op/sample_1`, `shard_op/sample_8`: the same with it on;
//! * `record/sample_1`, `record/sample_8`: `Introspect::record` alone, with
//!   two watched prefixes (one matching most keys).
//!
//! `cargo bench --bench introspect -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shoal::exec::Shard;
use shoal::introspect::{Cmd, Introspect, Status};
use shoal::protocol::StoreMode;

const KEYS: usize = 100_000;
const STREAM: usize = 1 << 16;
const NOW: u32 = 100;
const UNIX: u32 = 1_700_000_000;

fn key(i: usize) -> Vec<u8> {
    format!(
        "{}:{i:08}",
        if i.is_multiple_of(4) { "page" } else { "user" }
    )
    .into_bytes()
}

/// Key indices drawn from Zipf(1) over `KEYS` (inverse CDF, xorshift).
fn zipf_stream() -> Vec<u32> {
    let mut cdf = Vec::with_capacity(KEYS);
    let mut sum = 0.0f64;
    for i in 1..=KEYS {
        sum += 1.0 / i as f64;
        cdf.push(sum);
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..STREAM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 * sum;
            cdf.partition_point(|&c| c < u).min(KEYS - 1) as u32
        })
        .collect()
}

fn shard() -> Shard {
    Shard::standalone(256 << 20, 1 << 20, false)
}

fn bench(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let stream = zipf_stream();
    let value = [b'v'; 32];

    let mut g = c.benchmark_group("introspect");
    g.throughput(Throughput::Elements(1));

    for (name, sample) in [("off", 0u32), ("sample_1", 1), ("sample_8", 8)] {
        let mut s = shard();
        // Half the keys present, so gets both hit and miss.
        for k in keys.iter().step_by(2) {
            s.store(StoreMode::Set, k, 0, 0, &value, 0, NOW);
        }
        if sample > 0 {
            s.enable_introspection(sample);
        }
        let mut i = 0usize;
        g.bench_function(format!("shard_op/{name}"), |b| {
            b.iter(|| {
                let k = &keys[stream[i % STREAM] as usize];
                i += 1;
                if i.is_multiple_of(10) {
                    black_box(s.store(StoreMode::Set, black_box(k), 0, 0, &value, 0, NOW));
                } else {
                    black_box(s.get_with(black_box(k), None, NOW, |it| it.value.len()));
                }
            })
        });
    }

    for (name, sample) in [("sample_1", 1u32), ("sample_8", 8)] {
        let mut intro = Introspect::new(sample);
        intro.set_watched(&[(1, b"user:0".to_vec()), (2, b"page:".to_vec())]);
        let mut i = 0usize;
        g.bench_function(format!("record/{name}"), |b| {
            b.iter(|| {
                let idx = stream[i % STREAM] as usize;
                i += 1;
                let (cmd, status) = match i % 10 {
                    0 => (Cmd::Set, Status::Stored),
                    _ if idx.is_multiple_of(2) => (Cmd::Get, Status::Hit),
                    _ => (Cmd::Get, Status::Miss),
                };
                intro.record(UNIX, cmd, status, black_box(&keys[idx]), 32);
            })
        });
        black_box(intro.report());
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Storage engine micro-benchmarks: get hit/miss, set, set at capacity (evicting), and the
//! per-item memory overhead for 1M items of 16-byte keys and 32-byte values.
//!
//! `cargo bench --bench storage_ops`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shoal::storage::{Store, StoreConfig};

const MIB: usize = 1 << 20;
const NOW: u32 = 100;

fn store(limit: usize) -> Store {
    Store::new(StoreConfig {
        memory_limit: limit,
        item_size_max: MIB,
        shard_id: 0,
        num_shards: 1,
        budget: None,
    })
}

/// 16-byte keys.
fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(b"key:");
    let digits = format!("{i:012}");
    k[4..].copy_from_slice(digits.as_bytes());
    k
}

/// A fixed pseudo-random visiting order, so lookups don't walk memory sequentially.
fn shuffled(n: usize) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn filled(n: usize, limit: usize) -> (Store, Vec<[u8; 16]>) {
    let mut s = store(limit);
    let keys: Vec<[u8; 16]> = (0..n as u64).map(key).collect();
    let value = [b'v'; 32];
    for k in &keys {
        s.set(k, &[&value], 0, 0, NOW).unwrap();
    }
    (s, keys)
}

fn report_overhead() {
    let (s, _) = filled(1_000_000, 1 << 30);
    let st = s.stats();
    eprintln!(
        "bytes/item overhead: {:.2} (1M items, 16 B keys + 32 B values; mem_used {} B, memcached ~59)",
        s.bytes_per_item_overhead(),
        st.mem_used
    );
}

fn bench(c: &mut Criterion) {
    report_overhead();

    let mut g = c.benchmark_group("storage");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));

    for n in [10_000usize, 1_000_000] {
        let (mut s, keys) = filled(n, 1 << 30);
        // Probe keys laid out in visiting order: reading them is sequential (as a key in a
        // receive buffer would be hot), so only the store's own memory accesses are random.
        let order = shuffled(n);
        let hits: Vec<[u8; 16]> = order.iter().map(|&o| keys[o as usize]).collect();
        let mut i = 0usize;
        g.bench_function(format!("get_hit/{n}_keys"), |b| {
            b.iter(|| {
                let k = &hits[i % n];
                i += 1;
                black_box(s.get(black_box(k), NOW).map(|it| it.value.len()))
            })
        });
        let misses: Vec<[u8; 16]> = order.iter().map(|&o| key(n as u64 + o as u64)).collect();
        let mut i = 0usize;
        g.bench_function(format!("get_miss/{n}_keys"), |b| {
            b.iter(|| {
                let k = &misses[i % n];
                i += 1;
                black_box(s.get(black_box(k), NOW).is_none())
            })
        });
        let value = [b'w'; 32];
        let mut i = 0usize;
        g.bench_function(format!("set_overwrite/{n}_keys"), |b| {
            b.iter(|| {
                let k = &hits[i % n];
                i += 1;
                black_box(s.set(black_box(k), &[&value], 0, 0, NOW).is_ok())
            })
        });
    }

    // Inserting new keys into a growing store (no eviction): includes index growth.
    g.bench_function("set_new_keys", |b| {
        let value = [b'v'; 32];
        b.iter_batched_ref(
            || (store(1 << 30), 0u64),
            |(s, i)| {
                for _ in 0..10_000 {
                    *i += 1;
                    black_box(s.set(&key(*i), &[&value], 0, 0, NOW).is_ok());
                }
            },
            BatchSize::PerIteration,
        )
    });

    // At capacity: every set of a new key evicts (64 MiB store ≈ 1.1 M items).
    {
        let limit = 64 * MIB;
        let mut s = store(limit);
        let value = [b'v'; 32];
        let mut i = 0u64;
        while s.stats().evictions == 0 {
            s.set(&key(i), &[&value], 0, 0, NOW).unwrap();
            i += 1;
        }
        // Some keys are hot, so second chance has work to do.
        let hot: Vec<[u8; 16]> = (i - 100_000..i).step_by(10).map(key).collect();
        let mut j = 0usize;
        g.bench_function("set_evicting/64MiB", |b| {
            b.iter(|| {
                i += 1;
                j += 1;
                if j.is_multiple_of(4) {
                    black_box(s.get(&hot[j % hot.len()], NOW).is_some());
                }
                black_box(s.set(&key(i), &[&value], 0, 0, NOW).is_ok())
            })
        });
        let st = s.stats();
        eprintln!(
            "set_evicting: mem_used {} / limit {}, items {}, evictions {}",
            st.mem_used, limit, st.curr_items, st.evictions
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

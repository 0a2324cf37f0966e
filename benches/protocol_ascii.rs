//! ASCII protocol micro-benchmarks: parsing a pipelined buffer of 16 requests
//! (get, set, mixed) and encoding `VALUE` replies. Throughput is per request,
//! so ns/request = reported time / 16. Parse timings include copying the
//! 16 requests into the read buffer and dropping the parsed requests.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use shoal::protocol::ascii::{encode, AsciiParser, Parsed};

const N: usize = 16;

fn pipeline(kind: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let value = [b'v'; 100];
    for i in 0..N {
        let get = match kind {
            "get" => true,
            "set" => false,
            _ => i % 2 == 0,
        };
        if get {
            v.extend_from_slice(format!("get user:session:{i:08}\r\n").as_bytes());
        } else {
            v.extend_from_slice(
                format!("set user:session:{i:08} 0 3600 {}\r\n", value.len()).as_bytes(),
            );
            v.extend_from_slice(&value);
            v.extend_from_slice(b"\r\n");
        }
    }
    v
}

fn parse_all(p: &mut AsciiParser, buf: &mut BytesMut) -> usize {
    let mut n = 0;
    loop {
        match p.parse(buf) {
            Parsed::Request(r) => {
                black_box(&r);
                n += 1;
            }
            Parsed::Incomplete | Parsed::Close => return n,
            other => {
                black_box(&other);
            }
        }
    }
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("ascii_parse_pipeline16");
    g.throughput(Throughput::Elements(N as u64));
    for kind in ["get", "set", "mixed"] {
        let input = pipeline(kind);
        g.bench_function(kind, |b| {
            let mut p = AsciiParser::new(1024 * 1024);
            let mut buf = BytesMut::with_capacity(16 * 1024);
            b.iter(|| {
                // Like a socket read into the connection buffer (one memcpy;
                // the buffer's storage is reclaimed once the frames are dropped).
                buf.extend_from_slice(&input);
                assert_eq!(parse_all(&mut p, &mut buf), N);
            })
        });
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("ascii_encode_value16");
    g.throughput(Throughput::Elements(N as u64));
    let keys: Vec<Vec<u8>> = (0..N)
        .map(|i| format!("user:session:{i:08}").into_bytes())
        .collect();
    let value = vec![b'v'; 100];
    for (name, cas) in [("value", None), ("value_cas", Some(1_234_567_890_123u64))] {
        g.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(8192);
            b.iter(|| {
                out.clear();
                for k in &keys {
                    encode::value(&mut out, k, 42, &value, cas);
                }
                encode::end(&mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_parse, bench_encode);
criterion_main!(benches);

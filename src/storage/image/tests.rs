use super::super::{Store, StoreConfig};
use super::*;

fn store(shard: u32, shards: u32) -> Store {
    Store::new(StoreConfig {
        memory_limit: 64 << 20,
        item_size_max: 1 << 20,
        shard_id: shard,
        num_shards: shards,
        budget: None,
    })
}

/// Writes `s`'s live items as cache 0 into an image; returns the bytes and its info.
fn save(s: &mut Store, now: u32, stop: u64) -> (Vec<u8>, FileInfo) {
    let mut w = ImageWriter::new(Vec::new(), 0, 1, stop).unwrap();
    w.begin_cache(0, 0).unwrap();
    s.try_for_each_live(now, |it| {
        w.push(&ImageItem {
            key: it.key,
            value: it.value,
            flags: it.flags,
            cas: it.cas,
            expires: it.exptime,
            bits: u8::from(it.fetched) | u8::from(it.stale) << 1 | u8::from(it.win) << 2,
        })
    })
    .unwrap();
    let (bytes, info) = w.finish().unwrap();
    (bytes, info)
}

/// Reads every block of `bytes` into a list of (cache, key, value, flags, cas, expires, bits).
type Row = (u32, Vec<u8>, Vec<u8>, u32, u64, u32, u8);
fn load(bytes: &[u8], stop: u64) -> Result<Vec<Row>, ImageError> {
    let mut r = ImageReader::new(bytes, 0, 1, stop)?;
    let mut out = Vec::new();
    while let Some(b) = r.next_block()? {
        for it in b.items() {
            let it = it?;
            out.push((
                b.cache,
                it.key.to_vec(),
                it.value.to_vec(),
                it.flags,
                it.cas,
                it.expires,
                it.bits,
            ));
        }
    }
    Ok(out)
}

#[test]
fn manifest_round_trip_and_damage() {
    let m = Manifest {
        stop_id: 7,
        multi_tenant: true,
        memory_limit: 64 << 20,
        item_size_max: 1 << 20,
        hash_seed: 0xdead_beef,
        max_cas: 12345,
        saved_unix: 1_700_000_000,
        files: vec![
            FileInfo {
                bytes: 100,
                crc: 5,
                items: 3,
            },
            FileInfo {
                bytes: 200,
                crc: 6,
                items: 4,
            },
        ],
    };
    let b = m.encode();
    assert_eq!(Manifest::decode(&b), Ok(m.clone()));
    for cut in 0..b.len() {
        assert!(Manifest::decode(&b[..cut]).is_err(), "cut at {cut}");
    }
    for i in 0..b.len() {
        let mut d = b.clone();
        d[i] ^= 0x10;
        assert!(Manifest::decode(&d).is_err(), "flip at {i}");
    }
    let mut longer = b.clone();
    longer.push(0);
    assert!(Manifest::decode(&longer).is_err());
}

/// key, value, flags, CAS, exptime, fetched, stale.
type Want = (Vec<u8>, Vec<u8>, u32, u64, u32, bool, bool);

#[test]
fn items_round_trip_through_an_image() {
    let mut s = store(0, 1);
    let now = 100;
    s.set(b"plain", &[b"v1"], 0, 0, now).unwrap();
    s.set(b"flags", &[b"v2"], 0xdead_beef, 0, now).unwrap();
    s.set(b"ttl", &[b"v3"], 1, now + 50, now).unwrap();
    s.set(b"gone", &[b"v4"], 1, now + 5, now).unwrap();
    s.set(b"deleted", &[b"v5"], 0, 0, now).unwrap();
    s.delete(b"deleted", now);
    s.set(b"plain", &[b"v1-new"], 0, 0, now).unwrap();
    s.set_with_cas(b"abs", &[b"v6"], 0, 0, 1 << 40, now)
        .unwrap();
    s.get(b"flags", now);
    s.set_stale(b"ttl", true, now);
    let big = vec![b'x'; 300_000];
    for i in 0..20 {
        s.set(format!("big{i}").as_bytes(), &[&big], i, 0, now)
            .unwrap();
    }
    let want: Vec<Want> = ["flags", "ttl", "plain", "abs", "big0", "big19"]
        .iter()
        .map(|k| {
            let it = s.peek(k.as_bytes(), now).unwrap();
            (
                it.key.to_vec(),
                it.value.to_vec(),
                it.flags,
                it.cas,
                it.exptime,
                it.fetched,
                it.stale,
            )
        })
        .collect();
    // "gone" expires before the save.
    let (bytes, info) = save(&mut s, now + 10, 9);
    assert_eq!(info.items, 24);
    assert_eq!(info.bytes, bytes.len() as u64);
    assert_eq!(verify(&bytes[..], &info), Ok(()));
    let rows = load(&bytes, 9).unwrap();
    assert_eq!(rows.len(), 24);
    assert!(rows.iter().all(|r| r.0 == 0));
    assert!(!rows.iter().any(|r| r.1 == b"gone" || r.1 == b"deleted"));

    // Into a fresh store on another layout: same CAS, flags, expiry, bits.
    let mut t = store(1, 3);
    let max = rows.iter().map(|r| r.4).max().unwrap();
    t.raise_cas_floor(max);
    for r in &rows {
        let it = ImageItem {
            key: &r.1,
            value: &r.2,
            flags: r.3,
            cas: r.4,
            expires: r.5,
            bits: r.6,
        };
        t.restore(&it, r.5, now + 10).unwrap();
    }
    assert_eq!(t.len(), 24);
    assert_eq!(t.stats().total_items, 0);
    for w in &want {
        let it = t.peek(&w.0, now + 10).unwrap();
        assert_eq!(
            (it.value, it.flags, it.cas, it.exptime, it.fetched, it.stale),
            (&w.1[..], w.2, w.3, w.4, w.5, w.6),
            "{:?}",
            String::from_utf8_lossy(&w.0)
        );
    }
    // New CAS values are above every restored one.
    let next = t.set(b"new", &[b"x"], 0, 0, now + 10).unwrap();
    assert!(next > max, "{next} <= {max}");
    assert!(t.last_cas() >= next);
}

#[test]
fn a_pending_flush_becomes_an_expiry() {
    let mut s = store(0, 1);
    s.set(b"a", &[b"1"], 0, 0, 10).unwrap();
    s.set(b"b", &[b"2"], 0, 15, 10).unwrap();
    s.set(b"c", &[b"3"], 0, 99, 10).unwrap();
    s.flush(20, 10);
    let (bytes, _) = save(&mut s, 11, 1);
    let exp: Vec<u32> = load(&bytes, 1).unwrap().iter().map(|r| r.5).collect();
    assert_eq!(exp, [20, 15, 20]);
}

#[test]
fn any_damage_or_truncation_is_refused() {
    let mut s = store(0, 1);
    for i in 0..3000u32 {
        let v = vec![b'a' + (i % 26) as u8; 500];
        s.set(format!("key{i}").as_bytes(), &[&v], i, 0, 5).unwrap();
    }
    let (bytes, info) = save(&mut s, 5, 42);
    assert!(load(&bytes, 42).unwrap().len() == 3000);
    // From another stop.
    assert!(load(&bytes, 43).is_err());
    // Every truncation fails both the manifest check and the reader.
    for cut in (0..bytes.len()).step_by(997).chain([bytes.len() - 1]) {
        assert!(verify(&bytes[..cut], &info).is_err(), "cut {cut}");
        assert!(load(&bytes[..cut], 42).is_err(), "cut {cut}");
    }
    // Every flipped byte (sampled) fails both.
    for i in (0..bytes.len()).step_by(331) {
        let mut d = bytes.clone();
        d[i] ^= 0x01;
        assert!(verify(&d[..], &info).is_err(), "flip {i}");
        assert!(load(&d, 42).is_err(), "flip {i}");
    }
    // Bytes after the trailer.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(verify(&longer[..], &info).is_err());
    assert!(load(&longer, 42).is_err());
}

#[test]
fn caches_get_their_own_blocks() {
    let mut w = ImageWriter::new(Vec::new(), 2, 4, 5).unwrap();
    let item = |k: &'static [u8]| ImageItem {
        key: k,
        value: b"v",
        flags: 0,
        cas: 1,
        expires: 0,
        bits: 0,
    };
    w.begin_cache(3, 111).unwrap();
    w.push(&item(b"a")).unwrap();
    w.begin_cache(9, 222).unwrap();
    w.push(&item(b"b")).unwrap();
    w.push(&item(b"c")).unwrap();
    let (bytes, info) = w.finish().unwrap();
    assert_eq!(info.items, 3);
    assert!(ImageReader::new(&bytes[..], 0, 4, 5).is_err());
    let mut r = ImageReader::new(&bytes[..], 2, 4, 5).unwrap();
    let mut got = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        for it in b.items() {
            got.push((b.cache, b.created, it.unwrap().key.to_vec()));
        }
    }
    assert_eq!(
        got,
        [
            (3, 111, b"a".to_vec()),
            (9, 222, b"b".to_vec()),
            (9, 222, b"c".to_vec())
        ]
    );
}

#[test]
fn a_full_store_evicts_rather_than_grows_on_restore() {
    let mut s = store(0, 1);
    let v = vec![b'v'; 1000];
    for i in 0..40_000u32 {
        s.set(format!("k{i}").as_bytes(), &[&v], 0, 0, 5).unwrap();
    }
    let (bytes, _) = save(&mut s, 5, 1);
    let rows = load(&bytes, 1).unwrap();
    assert_eq!(rows.len(), 40_000);
    let mut small = Store::new(StoreConfig {
        memory_limit: 8 << 20,
        item_size_max: 1 << 20,
        shard_id: 0,
        num_shards: 1,
        budget: None,
    });
    for r in &rows {
        let it = ImageItem {
            key: &r.1,
            value: &r.2,
            flags: r.3,
            cas: r.4,
            expires: r.5,
            bits: r.6,
        };
        small.restore(&it, 0, 5).unwrap();
        assert!(small.mem_used() <= (8 << 20) + super::super::MEMORY_SLACK);
    }
    assert!(small.len() < 40_000 && small.len() > 5000);
    // The newest items are the ones kept.
    assert!(small.peek(b"k39999", 5).is_some());
    assert!(small.peek(b"k0", 5).is_none());
}

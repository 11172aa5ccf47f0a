//! One suite, both backends: the embedded store in a temp dir and a real etcd per test.

use std::time::Duration;

use testsupport::{Etcd, TempDir};
use tokio::time::timeout;
use weft_controller::store::embedded::Embedded;
use weft_controller::store::etcd::EtcdStore;
use weft_controller::store::{Compare, Op, Store, StoreError, WatchEvent, WatchStream};

/// Keeps whatever backs a store alive for the test (dropping it removes it).
enum Backing {
    Dir(#[allow(dead_code)] TempDir),
    Etcd(Etcd),
}

async fn embedded() -> (Store, Backing) {
    let dir = TempDir::new("weft-store-");
    let s = Embedded::open(dir.path()).await.unwrap();
    (Store::Embedded(s), Backing::Dir(dir))
}

async fn etcd() -> (Store, Backing) {
    let e = Etcd::start();
    let s = EtcdStore::connect(&[e.client_url().to_string()])
        .await
        .unwrap();
    (Store::Etcd(Box::new(s)), Backing::Etcd(e))
}

async fn next(w: &mut WatchStream) -> WatchEvent {
    timeout(Duration::from_secs(10), w.recv())
        .await
        .expect("a watch event within 10 s")
        .expect("watch open")
        .expect("no watch error")
}

async fn compare_and_swap(s: &Store) {
    let k = b"/t/cas".to_vec();
    let r = s
        .txn(
            vec![Compare::Absent(k.clone())],
            vec![Op::put(k.clone(), "a")],
            vec![Op::Get(k.clone())],
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    let r2 = s
        .txn(
            vec![Compare::Absent(k.clone())],
            vec![Op::put(k.clone(), "b")],
            vec![Op::Get(k.clone())],
        )
        .await
        .unwrap();
    assert!(!r2.succeeded);
    let cur = r2.gets[0].clone().unwrap();
    assert_eq!((cur.value.as_slice(), cur.version), (&b"a"[..], 1));
    // Swap on the revision we read: succeeds once, then the revision is stale.
    let swap = |v: &'static str| vec![Op::put(k.clone(), v)];
    assert!(
        s.txn(
            vec![Compare::ModRevision(k.clone(), cur.mod_revision)],
            swap("c"),
            vec![]
        )
        .await
        .unwrap()
        .succeeded
    );
    assert!(
        !s.txn(
            vec![Compare::ModRevision(k.clone(), cur.mod_revision)],
            swap("d"),
            vec![]
        )
        .await
        .unwrap()
        .succeeded
    );
    let now = s.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (now.value.as_slice(), now.version, now.create_revision),
        (&b"c"[..], 2, cur.create_revision)
    );
    assert!(
        s.txn(
            vec![Compare::Value(k.clone(), b"c".to_vec())],
            vec![Op::Delete(k.clone())],
            vec![]
        )
        .await
        .unwrap()
        .succeeded
    );
    assert!(s.get(&k).await.unwrap().is_none());
}

async fn transactions_are_atomic(s: &Store) {
    let r = s
        .txn(
            vec![Compare::Version(b"/t/none".to_vec(), 5)],
            vec![Op::put("/t/x", "1"), Op::put("/t/y", "1")],
            vec![],
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert!(s.get(b"/t/x").await.unwrap().is_none() && s.get(b"/t/y").await.unwrap().is_none());
    let r = s
        .txn(
            vec![],
            vec![Op::put("/t/x", "1"), Op::put("/t/y", "2")],
            vec![],
        )
        .await
        .unwrap();
    let (x, y) = (
        s.get(b"/t/x").await.unwrap().unwrap(),
        s.get(b"/t/y").await.unwrap().unwrap(),
    );
    assert_eq!(
        (x.mod_revision, y.mod_revision),
        (r.revision, r.revision),
        "one revision per transaction"
    );
}

async fn ranges_and_revisions(s: &Store) {
    let mut last = 0;
    for i in 0..5 {
        let rev = s.put(format!("/r/{i}").as_bytes(), b"v").await.unwrap();
        assert!(rev > last, "revisions increase");
        last = rev;
    }
    s.put(b"/rx", b"not in /r/").await.unwrap();
    let (kvs, rev) = s.range(b"/r/").await.unwrap();
    assert_eq!(
        kvs.iter().map(|k| k.key.clone()).collect::<Vec<_>>(),
        (0..5)
            .map(|i| format!("/r/{i}").into_bytes())
            .collect::<Vec<_>>()
    );
    assert!(rev > last);
    s.txn(vec![], vec![Op::DeletePrefix(b"/r/".to_vec())], vec![])
        .await
        .unwrap();
    assert!(s.range(b"/r/").await.unwrap().0.is_empty());
    assert!(s.get(b"/rx").await.unwrap().is_some());
}

/// A range larger than one answer may be (gRPC's 4 MB by default): every key, in order, at one
/// revision, even while others write.
async fn large_ranges(s: &Store) {
    let value = vec![b'x'; 4096];
    let keys: Vec<Vec<u8>> = (0..2500)
        .map(|i| format!("/big/{i:05}").into_bytes())
        .collect();
    for chunk in keys.chunks(500) {
        let ops = chunk
            .iter()
            .map(|k| Op::put(k.clone(), value.clone()))
            .collect();
        s.txn(vec![], ops, vec![]).await.unwrap();
    }
    s.put(b"/bigger", b"not in /big/").await.unwrap();
    let (kvs, rev) = s.range(b"/big/").await.unwrap();
    assert_eq!(kvs.len(), keys.len());
    assert!(kvs.iter().map(|kv| &kv.key).eq(keys.iter()));
    assert!(kvs
        .iter()
        .all(|kv| kv.value == value && kv.mod_revision <= rev));
}

async fn watch_replays_then_follows_and_resumes(s: &Store) {
    let first = s.put(b"/w/a", b"1").await.unwrap();
    s.put(b"/w/b", b"2").await.unwrap();
    s.put(b"/other", b"x").await.unwrap();
    let mut w = s.watch(b"/w/", first).await.unwrap();
    let e1 = next(&mut w).await;
    let e2 = next(&mut w).await;
    assert_eq!((e1.key(), e2.key()), (&b"/w/a"[..], &b"/w/b"[..]));
    s.txn(vec![], vec![Op::Delete(b"/w/a".to_vec())], vec![])
        .await
        .unwrap();
    let e3 = next(&mut w).await;
    assert!(matches!(&e3, WatchEvent::Delete { key, .. } if key == b"/w/a"));
    drop(w);
    // Changes while nobody watches, then resume after the last revision seen.
    s.put(b"/w/c", b"3").await.unwrap();
    s.put(b"/w/d", b"4").await.unwrap();
    let mut w = s.watch(b"/w/", e3.revision() + 1).await.unwrap();
    let (c, d) = (next(&mut w).await, next(&mut w).await);
    assert_eq!((c.key(), d.key()), (&b"/w/c"[..], &b"/w/d"[..]));
    assert!(c.revision() > e3.revision() && d.revision() > c.revision());
    s.put(b"/w/e", b"5").await.unwrap();
    assert_eq!(next(&mut w).await.key(), b"/w/e");
    assert!(
        timeout(Duration::from_millis(300), w.recv()).await.is_err(),
        "nothing repeated"
    );
}

async fn leases(s: &Store) {
    let id = s.lease_grant(2).await.unwrap();
    s.txn(
        vec![],
        vec![Op::Put {
            key: b"/l/node".to_vec(),
            value: b"up".to_vec(),
            lease: id,
        }],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(s.get(b"/l/node").await.unwrap().unwrap().lease, id);
    let (_, rev) = s.range(b"/l/").await.unwrap();
    let mut w = s.watch(b"/l/", rev + 1).await.unwrap();
    // Kept alive past its TTL, the key stays.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(s.lease_keepalive(id).await.unwrap() >= 1);
    }
    assert!(s.get(b"/l/node").await.unwrap().is_some());
    // Left alone, it expires and the key goes, with a delete event.
    let ev = timeout(Duration::from_secs(8), w.recv())
        .await
        .expect("expiry within 8 s")
        .unwrap()
        .unwrap();
    assert!(
        matches!(&ev, WatchEvent::Delete { key, .. } if key == b"/l/node"),
        "{ev:?}"
    );
    assert!(s.get(b"/l/node").await.unwrap().is_none());
    assert!(s.lease_keepalive(id).await.is_err());
    // Revoking deletes at once.
    let id2 = s.lease_grant(60).await.unwrap();
    s.txn(
        vec![],
        vec![Op::Put {
            key: b"/l/n2".to_vec(),
            value: b"up".to_vec(),
            lease: id2,
        }],
        vec![],
    )
    .await
    .unwrap();
    s.lease_revoke(id2).await.unwrap();
    assert!(s.get(b"/l/n2").await.unwrap().is_none());
    // A put on a dead lease is refused.
    let e = s
        .txn(
            vec![],
            vec![Op::Put {
                key: b"/l/n3".to_vec(),
                value: vec![],
                lease: id2,
            }],
            vec![],
        )
        .await;
    assert!(matches!(e, Err(StoreError::LeaseNotFound(_))), "{e:?}");
}

/// Opens a watch that must fail because its start revision was compacted away; the error may
/// come from `watch` itself or as the stream's first item, depending on the backend.
async fn watch_error(s: &Store, prefix: &[u8], from: i64) -> StoreError {
    match s.watch(prefix, from).await {
        Err(e) => e,
        Ok(mut w) => timeout(Duration::from_secs(10), w.recv())
            .await
            .expect("an answer within 10 s")
            .expect("an error, not a closed watch")
            .expect_err("an error, not an event"),
    }
}

async fn compaction(s: &Store) {
    let r1 = s.put(b"/c/a", b"1").await.unwrap();
    let r2 = s.put(b"/c/a", b"2").await.unwrap();
    let r3 = s.put(b"/c/b", b"3").await.unwrap();
    s.compact(r2).await.unwrap();
    s.compact(r1).await.unwrap(); // already compacted past it: nothing to do
    let e = watch_error(s, b"/c/", r1).await;
    assert_eq!(
        e,
        StoreError::Compacted {
            requested: r1,
            oldest: r2
        }
    );
    assert!(e.to_string().contains("compacted"), "{e}");
    // From the compaction revision on, history is still there.
    let mut w = s.watch(b"/c/", r2).await.unwrap();
    let (a, b) = (next(&mut w).await, next(&mut w).await);
    assert_eq!((a.revision(), b.revision()), (r2, r3));
    assert!(matches!(&a, WatchEvent::Put(kv) if kv.value == b"2"));
    // The current state is untouched by compaction.
    assert_eq!(s.get(b"/c/a").await.unwrap().unwrap().version, 2);
    assert!(
        s.compact(r3 + 100).await.is_err(),
        "no compaction into the future"
    );
}

macro_rules! suite {
    ($($name:ident),*) => {
        mod embedded_backend {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                let (s, _b) = embedded().await;
                super::$name(&s).await;
            })*
        }
        mod etcd_backend {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                let (s, _b) = etcd().await;
                super::$name(&s).await;
            })*
        }
    };
}

suite!(
    compare_and_swap,
    transactions_are_atomic,
    ranges_and_revisions,
    large_ranges,
    watch_replays_then_follows_and_resumes,
    leases,
    compaction
);

#[tokio::test(flavor = "multi_thread")]
async fn embedded_survives_a_restart() {
    let dir = TempDir::new("weft-store-");
    let rev = {
        let s = Embedded::open(dir.path()).await.unwrap();
        s.txn(vec![], vec![Op::put("/p/a", "1")], vec![])
            .await
            .unwrap();
        s.txn(vec![], vec![Op::put("/p/a", "2")], vec![])
            .await
            .unwrap()
            .revision
    };
    let s = Store::Embedded(Embedded::open(dir.path()).await.unwrap());
    let kv = s.get(b"/p/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.version, kv.mod_revision),
        (&b"2"[..], 2, rev)
    );
    assert!(
        s.put(b"/p/b", b"x").await.unwrap() > rev,
        "the revision counter survives"
    );
    // History survives too: a watch from the first revision replays everything.
    let mut w = s.watch(b"/p/", 1).await.unwrap();
    assert_eq!(next(&mut w).await.revision(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_state_outlives_the_client() {
    let (s, b) = etcd().await;
    let Backing::Etcd(e) = &b else { unreachable!() };
    let rev = s.put(b"/p/a", b"1").await.unwrap();
    drop(s);
    // A new netmaster (a new client) finds everything and the revision goes on.
    let s = Store::Etcd(Box::new(
        EtcdStore::connect(&[e.client_url().to_string()])
            .await
            .unwrap(),
    ));
    let kv = s.get(b"/p/a").await.unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"1"[..], rev));
    assert!(s.put(b"/p/b", b"x").await.unwrap() > rev);
    let mut w = s.watch(b"/p/", rev).await.unwrap();
    assert_eq!(next(&mut w).await.key(), b"/p/a");
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_unreachable_is_unavailable() {
    let (s, b) = etcd().await;
    s.put(b"/u", b"1").await.unwrap();
    let Backing::Etcd(mut e) = b else {
        unreachable!()
    };
    e.stop();
    let r = timeout(Duration::from_secs(30), s.get(b"/u"))
        .await
        .expect("fails within 30 s");
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_watch_from_a_compacted_revision_is_refused() {
    let dir = TempDir::new("weft-store-");
    let s = Store::Embedded(Embedded::open_keeping(dir.path(), 10).await.unwrap());
    for i in 0..30 {
        s.put(format!("/c/{i}").as_bytes(), b"v").await.unwrap();
    }
    match s.watch(b"/c/", 1).await {
        Err(StoreError::Compacted {
            requested: 1,
            oldest,
        }) => assert!(oldest > 1 && oldest <= 21, "{oldest}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a compacted revision was accepted"),
    }
    // Recent history is still there.
    let mut w = s.watch(b"/c/", 25).await.unwrap();
    assert_eq!(next(&mut w).await.revision(), 25);
}

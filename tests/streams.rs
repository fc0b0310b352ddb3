//! Stream upkeep: trimming removes only what every consumer group has finished.

mod common;

use common::*;
use muster::store::Store;

async fn ids(c: &mut redis::aio::MultiplexedConnection, stream: &str) -> Vec<String> {
    let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(c)
        .await
        .unwrap();
    r.ids.into_iter().map(|e| e.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_keeps_every_unread_and_unacknowledged_entry() {
    let redis = TestRedis::start().await;
    let store = Store::connect(&redis.url(), &prefix(), 2).await.unwrap();
    let mut c = redis.conn().await;
    let stream = store.keys.deliveries(0);
    // No stream yet, then a stream without groups: nothing to do, no error.
    assert_eq!(store.trim_finished(&stream).await.unwrap(), 0);
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("k")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(store.trim_finished(&stream).await.unwrap(), 0);
    store.ensure_group(&stream, "fast").await.unwrap();
    store.ensure_group(&stream, "slow").await.unwrap();
    for i in 0..2999 {
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("i")
            .arg(i)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let all = ids(&mut c, &stream).await;
    assert_eq!(all.len(), 3000);
    let mut bc = store.blocking_connection(&stream).await.unwrap();
    // "fast" read and acknowledged everything; "slow" read 2,000, acknowledged all but the
    // entry at 1,500, and never read the last 1,000.
    let fast = store
        .read_group(&mut bc, &stream, "fast", "a", 3000, 10)
        .await
        .unwrap();
    let fast_ids: Vec<String> = fast.iter().map(|e| e.id.clone()).collect();
    store.ack_entries(&stream, "fast", &fast_ids).await.unwrap();
    let slow = store
        .read_group(&mut bc, &stream, "slow", "b", 2000, 10)
        .await
        .unwrap();
    let mut slow_ids: Vec<String> = slow.iter().map(|e| e.id.clone()).collect();
    let kept = slow_ids.remove(1500);
    store.ack_entries(&stream, "slow", &slow_ids).await.unwrap();
    let trimmed = store.trim_finished(&stream).await.unwrap();
    let left = ids(&mut c, &stream).await;
    assert!(trimmed > 0, "finished entries below the floor go");
    assert_eq!(trimmed as usize + left.len(), 3000);
    assert!(left.contains(&kept), "the unacknowledged entry stays");
    assert!(
        all[1500..].iter().all(|id| left.contains(id)),
        "nothing at or above the oldest unfinished entry goes"
    );
    // Once it is acknowledged, the floor moves to the last entry "slow" read.
    store
        .ack_entries(&stream, "slow", std::slice::from_ref(&kept))
        .await
        .unwrap();
    store.trim_finished(&stream).await.unwrap();
    let left = ids(&mut c, &stream).await;
    assert!(
        !left.contains(&kept) && left.len() < 1200,
        "finished entries go (whole stream nodes at a time): {} left",
        left.len()
    );
    assert!(
        all[1999..].iter().all(|id| left.contains(id)),
        "the 1,000 entries \"slow\" never read are all there"
    );
    // "slow" reads them all: every entry it had not read arrives.
    let rest = store
        .read_group(&mut bc, &stream, "slow", "b", 5000, 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1000);
}

async fn xlen(c: &mut redis::aio::MultiplexedConnection, stream: &str) -> usize {
    redis::cmd("XLEN").arg(stream).query_async(c).await.unwrap()
}

/// What the store retries after a lost answer must be safe to run twice: the answer to one
/// SMS reply is enqueued once however often its enqueue runs, finishing a delivery entry
/// hands its unsent rest back once, and a retry is scheduled once even when the second run
/// comes after the first retry was already moved on to the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_enqueues_do_nothing_twice() {
    let redis = TestRedis::start().await;
    let store = Store::connect(&redis.url(), &prefix(), 1).await.unwrap();
    let mut c = redis.conn().await;
    let q = store.keys.deliveries(0);
    // The same reply (gateway message id) twice: one note.
    let first = store
        .enqueue_sms_note("v0001", "sim", "in-42", "reply_accepted", "23", "")
        .await
        .unwrap();
    let again = store
        .enqueue_sms_note("v0001", "sim", "in-42", "reply_accepted", "23", "")
        .await
        .unwrap();
    assert!(first && !again, "{first} {again}");
    assert_eq!(xlen(&mut c, &q).await, 1);
    // Another reply of the same volunteer is answered too.
    assert!(
        store
            .enqueue_sms_note("v0001", "sim", "in-43", "reply_arrived", "23", "")
            .await
            .unwrap()
    );
    assert_eq!(xlen(&mut c, &q).await, 2);

    // Finishing an entry with a rest to hand back, twice (the second run is the retry).
    let id = muster::domain::incident::IncidentId::random();
    let q = store.keys.deliveries(store.keys.partition_of(&id));
    store.ensure_group(&q, "notifier").await.unwrap();
    let entry: String = redis::cmd("XADD")
        .arg(&q)
        .arg("*")
        .arg("k")
        .arg("callout")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("notifier")
        .arg("me")
        .arg("STREAMS")
        .arg(&q)
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let before = xlen(&mut c, &q).await;
    let finish = muster::store::callouts::Finish {
        entry: &entry,
        group: "notifier",
        rest: &[7, 8, 9],
        attempt: 1,
    };
    for _ in 0..2 {
        store
            .deliveries_done(&id, "callout", 0, &[], Some(&finish))
            .await
            .unwrap();
    }
    assert_eq!(
        xlen(&mut c, &q).await,
        before + 1,
        "the rest is handed back once"
    );
    // A message's retry recorded twice, the second run after the first retry was already
    // moved on to the stream (the answer of the first run was lost meanwhile): one retry.
    let _: () = redis::cmd("HSET")
        .arg(store.keys.callouts(&id))
        .arg(7)
        .arg(r#"{"st":"notified","r":"rescue"}"#)
        .query_async(&mut c)
        .await
        .unwrap();
    let retry = muster::store::callouts::DeliveryOutcome::Retry {
        at: 1_000,
        attempt: 2,
        error: "503".into(),
    };
    let before = xlen(&mut c, &q).await;
    let p = store.keys.partition_of(&id);
    store
        .deliveries_done(&id, "stand_down", 0, &[(7, retry.clone())], None)
        .await
        .unwrap();
    assert_eq!(store.promote_due(p, 1_000, 100).await.unwrap(), 1);
    store
        .deliveries_done(&id, "stand_down", 0, &[(7, retry)], None)
        .await
        .unwrap();
    assert_eq!(store.promote_due(p, 1_000, 100).await.unwrap(), 0);
    assert_eq!(xlen(&mut c, &q).await, before + 1, "one retry of attempt 2");

    // An entry finished with a retry, twice, the retry promoted in between: one retry.
    let note: String = redis::cmd("XADD")
        .arg(&q)
        .arg("*")
        .arg("k")
        .arg("sms_note")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("notifier")
        .arg("me")
        .arg("STREAMS")
        .arg(&q)
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let fields = vec![("k".to_string(), "sms_note".to_string())];
    let before = xlen(&mut c, &q).await;
    store
        .finish_entry(p, "notifier", &note, Some((2_000, &fields)))
        .await
        .unwrap();
    assert_eq!(store.promote_due(p, 2_000, 100).await.unwrap(), 1);
    store
        .finish_entry(p, "notifier", &note, Some((2_000, &fields)))
        .await
        .unwrap();
    assert_eq!(store.promote_due(p, 2_000, 100).await.unwrap(), 0);
    assert_eq!(xlen(&mut c, &q).await, before + 1, "one retry of the note");
}

//! like-counter's promise, tested the way it can break: generated histories of likes and
//! unlikes are put on the real stream (with producer duplicates), then delivered to the real
//! binary in random batches, with redeliveries of old batches after newer ones, partial
//! batches standing for a crash between two transactions, and a full replay from
//! TRIM_HORIZON. After every history the counts in DynamoDB must equal a simple model: the
//! number of users whose latest fact (by occurred_at, then event id) is a like.

use aws_sdk_dynamodb::types::AttributeValue;
use fastrand::Rng;
use serde_json::Value;
use snapglow::contracts::{Envelope, SocialEvent, Timestamp};
use snapglow_local::scenarios::producer::like_event;
use snapglow_tests::{TestStack, invoke_json};
use std::collections::BTreeMap;
use uuid::Uuid;

fn like(image: &str, user: &str, liked: bool, at_ms: i64, event_id: Uuid) -> Envelope {
    like_event(
        image,
        user,
        liked,
        Some(event_id),
        Timestamp::from_millis(at_ms),
    )
}

/// The reference: count(image) = users whose latest fact is a like.
fn model(history: &[Envelope]) -> BTreeMap<String, i64> {
    let mut latest: BTreeMap<(String, String), (i64, Uuid, bool)> = BTreeMap::new();
    for e in history {
        let (image, user, liked) = match &e.event {
            SocialEvent::ImageLiked(d) => (d.image_id.clone(), d.user_id.clone(), true),
            SocialEvent::ImageLikeUndone(d) => (d.image_id.clone(), d.user_id.clone(), false),
            _ => continue,
        };
        let version = (e.occurred_at.millis(), e.event_id, liked);
        let entry = latest.entry((image, user)).or_insert(version);
        if (version.0, version.1) > (entry.0, entry.1) {
            *entry = version;
        }
    }
    let mut counts = BTreeMap::new();
    for ((image, _), (_, _, liked)) in latest {
        *counts.entry(image).or_insert(0) += i64::from(liked);
    }
    counts
}

/// A history: likes and unlikes of `images` by `users`, some at the same millisecond (the
/// tie is broken by event id), and the order producers put them in, duplicates included.
fn history(random: &mut Rng, events: usize) -> (Vec<Envelope>, Vec<Envelope>) {
    let images = ["img-a", "img-b", "img-c"];
    let mut facts = Vec::new();
    let mut at = 1_700_000_000_000i64;
    for _ in 0..events {
        at += random.i64(0..3); // 0 gives ties
        let image = images[random.usize(..images.len())];
        let user = format!("u{}", random.u32(..8));
        facts.push(like(
            image,
            &user,
            random.u32(..100) < 65,
            at,
            Uuid::from_u128(random.u128(..)),
        ));
    }
    let mut put = Vec::new();
    let mut retries: Vec<(usize, Envelope)> = Vec::new();
    for (i, fact) in facts.iter().enumerate() {
        put.push(fact.clone());
        if random.u32(..100) < 15 {
            // The producer's retry lands a few records later, with a new sequence number.
            retries.push((i + 1 + random.usize(..5), fact.clone()));
        }
        for (_, retry) in retries.extract_if(.., |(when, _)| *when <= i) {
            put.push(retry);
        }
    }
    put.extend(retries.into_iter().map(|(_, e)| e));
    (facts, put)
}

async fn deliver(
    stage: &TestStack,
    random: &mut Rng,
    counter: &mut snapglow_local::lambda::LocalFunction,
) {
    for (shard, records) in stage.shards().await {
        let mut delivered: Vec<(usize, usize)> = Vec::new();
        let mut at = 0;
        while at < records.len() {
            let end = (at + 1 + random.usize(..25)).min(records.len());
            if random.u32(..100) < 30 {
                // A crash between two transactions: some of the batch's keys were committed.
                let subset: Vec<_> = records[at..end]
                    .iter()
                    .filter(|_| random.bool())
                    .cloned()
                    .collect();
                if !subset.is_empty() {
                    invoke_json(counter, &stage.kinesis_batch(&shard, &subset)).await;
                }
            }
            let response =
                invoke_json(counter, &stage.kinesis_batch(&shard, &records[at..end])).await;
            assert_eq!(
                response["batchItemFailures"],
                Value::Array(vec![]),
                "no failure expected against a healthy table"
            );
            delivered.push((at, end));
            if random.u32(..100) < 25 {
                // An old batch redelivered after newer ones (a retry, or a bisected half).
                let (from, to) = delivered[random.usize(..delivered.len())];
                let half = if random.bool() {
                    from..(from + to).div_ceil(2)
                } else {
                    from..to
                };
                invoke_json(counter, &stage.kinesis_batch(&shard, &records[half])).await;
            }
            at = end;
        }
    }
}

#[tokio::test]
async fn generated_histories_end_in_the_model_counts_whatever_the_delivery() {
    for seed in [1u64, 7, 42] {
        // GIVEN a fresh stack and a generated history on the stream
        let stage = TestStack::start().await;
        let mut random = Rng::with_seed(seed);
        let (facts, put) = history(&mut random, 150);
        stage.publish(&put).await;
        // WHEN it is delivered in random batches, with redeliveries, partial batches and a replay
        let mut counter = stage.function("like-counter").await;
        deliver(&stage, &mut random, &mut counter).await;
        // THEN every count equals the model's
        let table = likes_table(&stage);
        let expected = model(&facts);
        for (image, count) in &expected {
            assert_eq!(
                table.count(image).await.unwrap(),
                *count,
                "seed {seed}, {image}: {} facts, {} records put",
                facts.len(),
                put.len()
            );
        }
        assert!(
            expected.values().any(|c| *c > 0),
            "seed {seed}: a history with no like tests little"
        );
    }
}

#[test]
fn the_model_is_the_latest_fact_per_user() {
    let a = Uuid::from_u128(1);
    let b = Uuid::from_u128(2);
    let history = [
        like("i", "u", true, 10, a),
        like("i", "u", false, 10, b),
        like("i", "v", true, 5, a),
        like("i", "v", true, 6, b),
    ];
    assert_eq!(model(&history), BTreeMap::from([("i".to_owned(), 1)]));
}

/// 100 likes of `image` by u0..u99, one millisecond apart.
fn hundred_likes(image: &str) -> Vec<Envelope> {
    (0..100u32)
        .map(|i| {
            like(
                image,
                &format!("u{i}"),
                true,
                1_700_000_000_000 + i64::from(i),
                Uuid::from_u128(u128::from(i) + 1),
            )
        })
        .collect()
}

/// Stores a like state of `user` for `image` that like-counter cannot read (a hand edit gave
/// it a text flag).
async fn corrupt_like_state(stage: &TestStack, image: &str, user: &str) {
    stage
        .clients
        .dynamodb
        .put_item()
        .table_name(stage.name("LikesTable"))
        .item("pk", AttributeValue::S(format!("IMAGE#{image}")))
        .item("sk", AttributeValue::S(format!("LIKE#{user}")))
        .item("liked", AttributeValue::S("yes".into()))
        .send()
        .await
        .unwrap();
}

fn likes_table(stage: &TestStack) -> like_counter::table::LikeCounts {
    stage.like_counts()
}

/// Hands every shard's records to like-counter in one batch each; none may be reported.
async fn deliver_shards(stage: &TestStack, counter: &mut snapglow_local::lambda::LocalFunction) {
    for (shard, records) in stage.shards().await {
        let response = invoke_json(counter, &stage.kinesis_batch(&shard, &records)).await;
        assert_eq!(
            snapglow_tests::batch_failures(&response),
            Vec::<String>::new()
        );
    }
}

#[tokio::test]
async fn a_like_whose_stored_state_is_unreadable_is_quarantined_alone_and_the_other_99_count() {
    // Prepare: one batch of 100 likes of one image, and a stored like state of the 8th liker
    // that the counter cannot read (a hand edit gave it a text flag)
    let stage = TestStack::start().await;
    let likes = hundred_likes("img-corrupt");
    corrupt_like_state(&stage, "img-corrupt", "u7").await;
    stage.publish(&likes).await;
    let mut counter = stage.function("like-counter").await;
    let shards = stage.shards().await;
    let (shard, records) = shards
        .iter()
        .find(|(_, records)| !records.is_empty())
        .unwrap();

    // Act
    let response = invoke_json(&mut counter, &stage.kinesis_batch(shard, records)).await;

    // Assess: the batch succeeds (no record is redelivered), 99 count, and u7's like waits in
    // the quarantine with the reason, to be redriven once the item is fixed
    assert_eq!(
        snapglow_tests::batch_failures(&response),
        Vec::<String>::new()
    );
    let table = likes_table(&stage);
    assert_eq!(table.count("img-corrupt").await.unwrap(), 99);
    let quarantined = stage.quarantined().await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0]["reason"], "corrupt_item");
    assert_eq!(quarantined[0]["source"]["partition_key"], "img-corrupt");
    let raw: serde_json::Value =
        serde_json::from_str(quarantined[0]["raw_text"].as_str().unwrap()).unwrap();
    assert_eq!(raw["data"]["user_id"], "u7");
}

/// A like of `image` by `user`, made now (a redrive refuses events older than the consumers
/// remember), whose envelope carries an extra `note` field (readers ignore fields they do not
/// know).
fn like_with_note(image: &str, user: &str, id: u128, note: &str) -> Vec<u8> {
    let now = snapglow::contracts::Timestamp::now().millis();
    let mut json: Value =
        serde_json::from_slice(&like(image, user, true, now, Uuid::from_u128(id)).to_json())
            .unwrap();
    json["note"] = Value::String(note.to_owned());
    serde_json::to_vec(&json).unwrap()
}

#[tokio::test]
async fn a_300_kb_record_and_one_sqs_cannot_carry_are_quarantined_whole_and_redriven_after_a_fix() {
    // Prepare: likes of one image; two likers' stored states are unreadable, and their likes
    // are records the quarantine message cannot hold as they are: one of 300 KB, one holding
    // U+FFFF (which SQS refuses in any message)
    let stage = TestStack::start().await;
    for user in ["big", "odd"] {
        corrupt_like_state(&stage, "img-redrive", user).await;
    }
    let mut records: Vec<Vec<u8>> = (0..3u128)
        .map(|i| like_with_note("img-redrive", &format!("u{i}"), i + 1, ""))
        .collect();
    records.push(like_with_note(
        "img-redrive",
        "big",
        10,
        &"x".repeat(300 * 1024),
    ));
    records.push(like_with_note("img-redrive", "odd", 11, "\u{FFFF}"));
    for record in records {
        stage
            .clients
            .kinesis
            .put_record()
            .stream_name(stage.name("ImageSocialEvents"))
            .partition_key("img-redrive")
            .data(aws_sdk_kinesis::primitives::Blob::new(record))
            .send()
            .await
            .unwrap();
    }
    let mut counter = stage.function("like-counter").await;
    deliver_shards(&stage, &mut counter).await;
    let table = likes_table(&stage);
    assert_eq!(table.count("img-redrive").await.unwrap(), 3);
    let entries =
        snapglow_local::stack::queues::peek_messages(&stage.clients, stage.url("QuarantineQueue"))
            .await
            .unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    // ... the 300 KB record sits whole in the quarantine bucket behind a claim check, the
    // other travels as base64
    let parsed: Vec<Value> = entries
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    let big = parsed
        .iter()
        .find(|e| e["raw_object"].is_object())
        .expect("a claim check");
    assert!(big["raw_object"]["bytes"].as_u64().unwrap() > 300 * 1024);
    assert_eq!(big["raw_object"]["bucket"], stage.name("QuarantineBucket"));
    assert!(parsed.iter().any(|e| e["raw_base64"].is_string()));

    // Act: the items are fixed, and both records redriven
    for user in ["big", "odd"] {
        stage
            .clients
            .dynamodb
            .delete_item()
            .table_name(stage.name("LikesTable"))
            .key("pk", AttributeValue::S("IMAGE#img-redrive".into()))
            .key("sk", AttributeValue::S(format!("LIKE#{user}")))
            .send()
            .await
            .unwrap();
    }
    for message in &entries {
        snapglow_local::stack::redrive::redrive(
            &stage.clients,
            stage.url("QuarantineQueue"),
            &message.message_id,
            stage.stack.dedup_retention(),
        )
        .await
        .unwrap();
    }
    deliver_shards(&stage, &mut counter).await;

    // Assess: both likes count, once, and the quarantine is empty
    assert_eq!(table.count("img-redrive").await.unwrap(), 5);
    assert_eq!(stage.quarantined().await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_like_with_an_oversized_user_id_is_quarantined_alone_and_the_other_99_count() {
    // Prepare: one batch of 100 likes of one image; the 50th carries a 2 KB user id, over
    // DynamoDB's sort-key limit once it is part of a key
    let stage = TestStack::start().await;
    let mut likes = hundred_likes("img-bounded");
    likes[49] = like(
        "img-bounded",
        &"x".repeat(2048),
        true,
        1_700_000_000_049,
        Uuid::from_u128(50),
    );
    stage.publish(&likes).await;
    let mut counter = stage.function("like-counter").await;
    let shards = stage.shards().await;
    let (shard, records) = shards
        .iter()
        .find(|(_, records)| !records.is_empty())
        .unwrap();
    assert_eq!(records.len(), 100, "one image: one shard");

    // Act
    let response = invoke_json(&mut counter, &stage.kinesis_batch(shard, records)).await;

    // Assess: the batch succeeds, 99 count, the one is quarantined with its reason
    assert_eq!(
        snapglow_tests::batch_failures(&response),
        Vec::<String>::new()
    );
    let table = likes_table(&stage);
    assert_eq!(table.count("img-bounded").await.unwrap(), 99);
    let quarantined = stage.quarantined().await;
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(
        quarantined[0]
            .to_string()
            .contains("is not an id: 2048 bytes"),
        "{}",
        quarantined[0]
    );
}

//! One conformance suite for every `Bus` backend (ARCHITECTURE.md, "The bus").
//!
//! `cases` holds the contract as async functions over `Arc<dyn Bus>`; the `conformance!` macro
//! instantiates each of them as a `#[tokio::test]` per backend. The Redis instantiation starts
//! its own throwaway `redis-server` per test (free port, temp dir, no persistence, killed on
//! drop), never the system one. Without `redis-server` the Redis tests fail loudly unless
//! `CONFAB_SKIP_REDIS=1`. Redis-only behaviour (restart, starting without Redis, two nodes) is
//! at the bottom.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_bus::{Bus, BusConfig, BusError, InProcessBus, RedisBus, SubEvent};

/// Small limits so every bound is cheap to reach; 1 s lifetimes keep timing tests short but with
/// margin on a loaded 2-core machine.
fn test_config() -> BusConfig {
    BusConfig {
        capacity: 5,
        expiry: Duration::from_secs(1),
        group_expiry: Duration::from_secs(1),
        max_message_size: 1024,
        subscriber_buffer: 16,
        redis_timeout: Duration::from_millis(500),
        ..BusConfig::default()
    }
    .with_capacity("big.*", 50)
    .with_capacity("many.*", 1000)
}

pub struct Harness {
    pub bus: Arc<dyn Bus>,
    _redis: Option<RedisServer>,
}

async fn inprocess() -> Option<Harness> {
    Some(Harness {
        bus: Arc::new(InProcessBus::new(test_config())),
        _redis: None,
    })
}

async fn redis() -> Option<Harness> {
    let server = RedisServer::start_new()?;
    let bus = RedisBus::connect(&server.url(), test_config())
        .await
        .unwrap();
    assert!(bus.is_connected(), "bus did not connect to the test redis");
    Some(Harness {
        bus: Arc::new(bus),
        _redis: Some(server),
    })
}

macro_rules! conformance {
    ($backend:ident, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(h) = super::$backend().await else { return };
                    super::cases::$case(Arc::clone(&h.bus)).await;
                }
            )*
            use std::sync::Arc;
        }
    };
}

macro_rules! all_cases {
    ($backend:ident) => {
        conformance!(
            $backend,
            [
                fifo,
                capacity_full,
                capacity_by_pattern,
                capacity_on_reply_channel,
                cancelled_receive_loses_nothing,
                message_expiry,
                receive_timeout,
                receive_wakes_waiter,
                size_limit,
                new_channel_unique,
                invalid_names,
                groups,
                group_membership_expiry,
                group_send_skips_full_member,
                concurrent_receivers_at_most_once,
                flush,
                pubsub_fanout,
                pubsub_slow_subscriber_lags,
                pubsub_drop_unsubscribes,
            ]
        );
    };
}

all_cases!(inprocess);
all_cases!(redis);

fn num(i: u32) -> Bytes {
    Bytes::copy_from_slice(&i.to_be_bytes())
}

fn as_num(b: &Bytes) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(5);

mod cases {
    use super::*;
    use std::collections::HashSet;

    pub async fn fifo(bus: Arc<dyn Bus>) {
        let ch = "big.fifo";
        for i in 0..50 {
            bus.send(ch, num(i)).await.unwrap();
        }
        for i in 0..50 {
            assert_eq!(as_num(&bus.receive(ch, LONG).await.unwrap()), i);
        }
        // Interleaved sends and receives keep order too.
        for i in 0..20 {
            bus.send(ch, num(i)).await.unwrap();
            bus.send(ch, num(i + 100)).await.unwrap();
            assert_eq!(as_num(&bus.receive(ch, LONG).await.unwrap()), i);
            assert_eq!(as_num(&bus.receive(ch, LONG).await.unwrap()), i + 100);
        }
    }

    pub async fn capacity_full(bus: Arc<dyn Bus>) {
        let ch = "small.cap";
        assert_eq!(bus.config().capacity_for(ch), 5);
        for i in 0..5 {
            bus.send(ch, num(i)).await.unwrap();
        }
        assert_eq!(bus.send(ch, num(5)).await, Err(BusError::ChannelFull));
        assert_eq!(as_num(&bus.receive(ch, LONG).await.unwrap()), 0);
        bus.send(ch, num(6)).await.unwrap();
        assert_eq!(bus.send(ch, num(7)).await, Err(BusError::ChannelFull));
        let got: Vec<u32> = {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(as_num(&bus.receive(ch, LONG).await.unwrap()));
            }
            v
        };
        assert_eq!(got, vec![1, 2, 3, 4, 6]);
    }

    pub async fn capacity_by_pattern(bus: Arc<dyn Bus>) {
        let ch = "big.pattern";
        assert_eq!(bus.config().capacity_for(ch), 50);
        for i in 0..50 {
            bus.send(ch, num(i)).await.unwrap();
        }
        assert_eq!(bus.send(ch, num(50)).await, Err(BusError::ChannelFull));
        // A name that only almost matches gets the default.
        for i in 0..5 {
            bus.send("bigger.x", num(i)).await.unwrap();
        }
        assert_eq!(
            bus.send("bigger.x", num(5)).await,
            Err(BusError::ChannelFull)
        );
    }

    /// A receiver that just timed out on its own `new_channel` (the reply-channel pattern) must
    /// not weaken the channel's capacity or order.
    pub async fn capacity_on_reply_channel(bus: Arc<dyn Bus>) {
        let ch = bus.new_channel("reply");
        assert_eq!(bus.receive(&ch, SHORT).await, Err(BusError::Timeout));
        for i in 0..5 {
            bus.send(&ch, num(i)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(bus.send(&ch, num(5)).await, Err(BusError::ChannelFull));
        for i in 0..5 {
            assert_eq!(as_num(&bus.receive(&ch, LONG).await.unwrap()), i);
        }
    }

    /// Dropping a pending receive (select!, client gone) must not eat later messages.
    pub async fn cancelled_receive_loses_nothing(bus: Arc<dyn Bus>) {
        for ch in ["small.cancel".to_string(), bus.new_channel("cancel")] {
            for _ in 0..3 {
                let pending =
                    tokio::time::timeout(Duration::from_millis(50), bus.receive(&ch, LONG)).await;
                assert!(pending.is_err(), "nothing was sent yet");
            }
            for i in 0..3 {
                bus.send(&ch, num(i)).await.unwrap();
            }
            for i in 0..3 {
                assert_eq!(as_num(&bus.receive(&ch, LONG).await.unwrap()), i);
            }
            assert_eq!(bus.receive(&ch, SHORT).await, Err(BusError::Timeout));
        }
    }

    pub async fn message_expiry(bus: Arc<dyn Bus>) {
        let ch = "small.expiry";
        for i in 0..5 {
            bus.send(ch, num(i)).await.unwrap();
        }
        assert_eq!(bus.send(ch, num(9)).await, Err(BusError::ChannelFull));
        tokio::time::sleep(bus.config().expiry + Duration::from_millis(300)).await;
        // Expired messages neither count against capacity nor get delivered.
        bus.send(ch, num(42)).await.unwrap();
        assert_eq!(as_num(&bus.receive(ch, LONG).await.unwrap()), 42);
        assert_eq!(bus.receive(ch, SHORT).await, Err(BusError::Timeout));
        // And an unfull channel simply loses them.
        bus.send(ch, num(1)).await.unwrap();
        tokio::time::sleep(bus.config().expiry + Duration::from_millis(300)).await;
        assert_eq!(bus.receive(ch, SHORT).await, Err(BusError::Timeout));
    }

    pub async fn receive_timeout(bus: Arc<dyn Bus>) {
        let t0 = Instant::now();
        assert_eq!(
            bus.receive("small.empty", Duration::from_millis(150)).await,
            Err(BusError::Timeout)
        );
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(140) && took < Duration::from_secs(2),
            "took {took:?}"
        );
        assert_eq!(
            bus.receive("small.empty", Duration::ZERO).await,
            Err(BusError::Timeout)
        );
    }

    pub async fn receive_wakes_waiter(bus: Arc<dyn Bus>) {
        for ch in ["small.wake", &bus.new_channel("wake")] {
            let (b, c) = (Arc::clone(&bus), ch.to_string());
            let waiter = tokio::spawn(async move {
                let m = b.receive(&c, LONG).await;
                (m, Instant::now())
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let sent = Instant::now();
            bus.send(ch, num(7)).await.unwrap();
            let (m, at) = waiter.await.unwrap();
            assert_eq!(as_num(&m.unwrap()), 7);
            assert!(
                at.duration_since(sent) < Duration::from_millis(500),
                "woke after {:?}",
                at - sent
            );
        }
    }

    pub async fn size_limit(bus: Arc<dyn Bus>) {
        let max = bus.config().max_message_size;
        let ok = Bytes::from(vec![b'x'; max]);
        let big = Bytes::from(vec![b'x'; max + 1]);
        bus.send("small.size", ok.clone()).await.unwrap();
        assert_eq!(bus.receive("small.size", LONG).await.unwrap(), ok);
        let too = Err(BusError::TooLarge { size: max + 1, max });
        assert_eq!(bus.send("small.size", big.clone()).await, too);
        assert_eq!(
            bus.group_send("grp.size", big.clone()).await.map(|_| ()),
            too
        );
        assert_eq!(bus.publish("topic.size", big).await.map(|_| ()), too);
    }

    pub async fn new_channel_unique(bus: Arc<dyn Bus>) {
        let names: HashSet<String> = (0..1000).map(|_| bus.new_channel("reply")).collect();
        assert_eq!(names.len(), 1000);
        assert!(names
            .iter()
            .all(|n| n.starts_with("reply!") && n.len() > "reply!".len()));
        let ch = names.iter().next().unwrap();
        bus.send(ch, num(3)).await.unwrap();
        assert_eq!(as_num(&bus.receive(ch, LONG).await.unwrap()), 3);
    }

    pub async fn invalid_names(bus: Arc<dyn Bus>) {
        for bad in ["", "has space", "tab\there", &"x".repeat(201)] {
            assert!(
                matches!(bus.send(bad, num(1)).await, Err(BusError::InvalidName(_))),
                "{bad:?}"
            );
            assert!(matches!(
                bus.receive(bad, SHORT).await,
                Err(BusError::InvalidName(_))
            ));
            assert!(matches!(
                bus.group_add(bad, "ok").await,
                Err(BusError::InvalidName(_))
            ));
            assert!(matches!(
                bus.subscribe(bad).await,
                Err(BusError::InvalidName(_))
            ));
        }
    }

    pub async fn groups(bus: Arc<dyn Bus>) {
        let g = "grp.main";
        let chans: Vec<String> = (0..3).map(|_| bus.new_channel("member")).collect();
        for c in &chans {
            bus.group_add(g, c).await.unwrap();
        }
        bus.group_add(g, &chans[0]).await.unwrap(); // re-adding renews, never duplicates
        assert_eq!(
            bus.group_send(g, Bytes::from_static(b"hello"))
                .await
                .unwrap(),
            3
        );
        for c in &chans {
            assert_eq!(
                bus.receive(c, LONG).await.unwrap(),
                Bytes::from_static(b"hello")
            );
            assert_eq!(
                bus.receive(c, SHORT).await,
                Err(BusError::Timeout),
                "exactly one copy"
            );
        }
        bus.group_discard(g, &chans[1]).await.unwrap();
        bus.group_discard(g, "never.a.member").await.unwrap();
        assert_eq!(
            bus.group_send(g, Bytes::from_static(b"again"))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            bus.receive(&chans[0], LONG).await.unwrap(),
            Bytes::from_static(b"again")
        );
        assert_eq!(
            bus.receive(&chans[2], LONG).await.unwrap(),
            Bytes::from_static(b"again")
        );
        assert_eq!(bus.receive(&chans[1], SHORT).await, Err(BusError::Timeout));
        assert_eq!(
            bus.group_send("grp.nobody", Bytes::from_static(b"x"))
                .await
                .unwrap(),
            0
        );
    }

    pub async fn group_membership_expiry(bus: Arc<dyn Bus>) {
        let g = "grp.expiry";
        let life = bus.config().group_expiry;
        bus.group_add(g, "small.renewed").await.unwrap();
        bus.group_add(g, "small.lapsed").await.unwrap();
        tokio::time::sleep(life * 6 / 10).await;
        bus.group_add(g, "small.renewed").await.unwrap();
        tokio::time::sleep(life * 6 / 10).await;
        // "lapsed" is past its membership, "renewed" is not.
        assert_eq!(bus.group_send(g, num(1)).await.unwrap(), 1);
        assert_eq!(
            as_num(&bus.receive("small.renewed", LONG).await.unwrap()),
            1
        );
        assert_eq!(
            bus.receive("small.lapsed", SHORT).await,
            Err(BusError::Timeout)
        );
        tokio::time::sleep(life * 6 / 10).await;
        assert_eq!(bus.group_send(g, num(2)).await.unwrap(), 0);
    }

    pub async fn group_send_skips_full_member(bus: Arc<dyn Bus>) {
        let g = "grp.full";
        bus.group_add(g, "small.full").await.unwrap();
        bus.group_add(g, "small.room").await.unwrap();
        bus.group_add(g, "big.room").await.unwrap();
        for i in 0..5 {
            bus.send("small.full", num(i)).await.unwrap();
        }
        // One full member must not stop the others, nor fail the send.
        assert_eq!(bus.group_send(g, num(99)).await.unwrap(), 2);
        assert_eq!(as_num(&bus.receive("small.room", LONG).await.unwrap()), 99);
        assert_eq!(as_num(&bus.receive("big.room", LONG).await.unwrap()), 99);
        for i in 0..5 {
            assert_eq!(as_num(&bus.receive("small.full", LONG).await.unwrap()), i);
        }
        assert_eq!(
            bus.receive("small.full", SHORT).await,
            Err(BusError::Timeout)
        );
        // Group capacities come from the same patterns as `send`.
        for i in 0..49 {
            bus.send("big.room", num(i)).await.unwrap();
        }
        assert_eq!(bus.group_send(g, num(100)).await.unwrap(), 3);
        assert_eq!(
            bus.group_send(g, num(101)).await.unwrap(),
            2,
            "big.room is now full"
        );
    }

    pub async fn concurrent_receivers_at_most_once(bus: Arc<dyn Bus>) {
        let ch = "many.shared";
        let total = 300u32;
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let b = Arc::clone(&bus);
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Ok(m) = b.receive(ch, Duration::from_millis(700)).await {
                        got.push(as_num(&m));
                    }
                    got
                })
            })
            .collect();
        for i in 0..total {
            bus.send(ch, num(i)).await.unwrap();
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut all = Vec::new();
        let mut busy = 0;
        for r in receivers {
            let got = r.await.unwrap();
            busy += usize::from(!got.is_empty());
            all.extend(got);
        }
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a message was delivered twice");
        assert_eq!(
            all,
            (0..total).collect::<Vec<_>>(),
            "together the receivers got every message"
        );
        assert!(busy >= 1);
    }

    pub async fn flush(bus: Arc<dyn Bus>) {
        bus.send("small.flush", num(1)).await.unwrap();
        bus.group_add("grp.flush", "small.flush2").await.unwrap();
        bus.flush().await.unwrap();
        assert_eq!(
            bus.receive("small.flush", SHORT).await,
            Err(BusError::Timeout)
        );
        assert_eq!(bus.group_send("grp.flush", num(1)).await.unwrap(), 0);
        bus.send("small.flush", num(2)).await.unwrap();
        assert_eq!(as_num(&bus.receive("small.flush", LONG).await.unwrap()), 2);
    }

    async fn next(sub: &mut confab_bus::Subscription) -> SubEvent {
        tokio::time::timeout(LONG, sub.recv())
            .await
            .expect("subscriber timed out")
            .expect("subscription closed")
    }

    pub async fn pubsub_fanout(bus: Arc<dyn Bus>) {
        let topic = "thread.fanout";
        let mut subs = Vec::new();
        for _ in 0..200 {
            subs.push(bus.subscribe(topic).await.unwrap());
        }
        for i in 0..10 {
            assert!(bus.publish(topic, num(i)).await.unwrap() >= 1);
        }
        for sub in &mut subs {
            for i in 0..10 {
                assert_eq!(next(sub).await, SubEvent::Message(num(i)));
            }
            assert_eq!(sub.try_recv(), None);
        }
        // Other topics see nothing.
        let mut other = bus.subscribe("thread.other").await.unwrap();
        bus.publish(topic, num(99)).await.unwrap();
        assert_eq!(next(&mut subs[0]).await, SubEvent::Message(num(99)));
        assert_eq!(other.try_recv(), None);
    }

    pub async fn pubsub_slow_subscriber_lags(bus: Arc<dyn Bus>) {
        let topic = "thread.slow";
        let buffer = bus.config().subscriber_buffer as u32;
        let mut fast = bus.subscribe(topic).await.unwrap();
        let mut slow = bus.subscribe(topic).await.unwrap();
        let total = buffer * 3;
        let t0 = Instant::now();
        for i in 0..total {
            bus.publish(topic, num(i)).await.unwrap();
            assert_eq!(
                next(&mut fast).await,
                SubEvent::Message(num(i)),
                "the fast subscriber keeps up"
            );
        }
        // Publishing never waited for the slow subscriber.
        assert!(t0.elapsed() < Duration::from_secs(5));
        let lost = u64::from(total - buffer);
        assert_eq!(next(&mut slow).await, SubEvent::Lagged(lost));
        for i in (total - buffer)..total {
            assert_eq!(next(&mut slow).await, SubEvent::Message(num(i)));
        }
        bus.publish(topic, num(1000)).await.unwrap();
        assert_eq!(
            next(&mut slow).await,
            SubEvent::Message(num(1000)),
            "a lagged subscriber resumes"
        );
    }

    pub async fn pubsub_drop_unsubscribes(bus: Arc<dyn Bus>) {
        let topic = "thread.drop";
        let a = bus.subscribe(topic).await.unwrap();
        let b = bus.subscribe(topic).await.unwrap();
        assert!(bus.publish(topic, num(1)).await.unwrap() >= 1);
        drop(a);
        assert!(
            bus.publish(topic, num(2)).await.unwrap() >= 1,
            "still one subscriber"
        );
        drop(b);
        let t0 = Instant::now();
        while bus.publish(topic, num(3)).await.unwrap() != 0 {
            assert!(
                t0.elapsed() < LONG,
                "topic still subscribed after its last subscriber left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut c = bus.subscribe(topic).await.unwrap();
        bus.publish(topic, num(4)).await.unwrap();
        assert_eq!(
            next(&mut c).await,
            SubEvent::Message(num(4)),
            "re-subscribing works"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Redis-only: failure and multi-node behaviour.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart() {
    let Some(mut server) = RedisServer::start_new() else {
        return;
    };
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&server.url(), test_config())
            .await
            .unwrap(),
    );
    let mut sub = bus.subscribe("thread.restart").await.unwrap();
    bus.publish("thread.restart", num(1)).await.unwrap();
    assert_eq!(next(&mut sub).await, SubEvent::Message(num(1)));
    bus.send("small.restart", num(1)).await.unwrap();
    assert_eq!(
        as_num(&bus.receive("small.restart", LONG).await.unwrap()),
        1
    );

    // A receive blocked when Redis dies is released with Unavailable, not left hanging.
    let (b, ch) = (Arc::clone(&bus), bus.new_channel("blocked"));
    let blocked = tokio::spawn(async move { b.receive(&ch, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.stop();
    let t0 = Instant::now();
    assert!(matches!(
        blocked.await.unwrap(),
        Err(BusError::Unavailable(_))
    ));
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "blocked receive took {:?}",
        t0.elapsed()
    );
    assert_eq!(next(&mut sub).await, SubEvent::Disconnected);

    // While Redis is down every operation fails fast with Unavailable.
    for _ in 0..3 {
        let t0 = Instant::now();
        assert!(matches!(
            bus.send("small.restart", num(2)).await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            bus.receive("small.restart", LONG).await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            bus.group_add("grp.r", "small.restart").await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            bus.group_send("grp.r", num(2)).await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            bus.publish("thread.restart", num(2)).await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            bus.subscribe("thread.new").await,
            Err(BusError::Unavailable(_))
        ));
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "failing took {:?}",
            t0.elapsed()
        );
    }

    server.start();
    let t0 = Instant::now();
    while bus.send("small.restart", num(3)).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "bus did not recover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        as_num(&bus.receive("small.restart", LONG).await.unwrap()),
        3
    );
    // The existing subscription resumes by itself and says so (so realtime resyncs clients).
    assert_eq!(next(&mut sub).await, SubEvent::Reconnected);
    bus.publish("thread.restart", num(4)).await.unwrap();
    assert_eq!(next(&mut sub).await, SubEvent::Message(num(4)));
    // Blocking receives work again too.
    let (b, ch) = (Arc::clone(&bus), bus.new_channel("after"));
    let c2 = ch.clone();
    let waiter = tokio::spawn(async move { b.receive(&c2, LONG).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.send(&ch, num(5)).await.unwrap();
    assert_eq!(as_num(&waiter.await.unwrap().unwrap()), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start() {
    let Some(mut server) = RedisServer::start_new() else {
        return;
    };
    server.stop();
    let t0 = Instant::now();
    let bus = RedisBus::connect(&server.url(), test_config())
        .await
        .unwrap();
    assert!(!bus.is_connected());
    // Unavailable, saying where and why.
    let addr = server
        .url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    let refused = format!("Redis at {addr}: connection refused");
    match bus.send("small.x", num(1)).await {
        Err(BusError::Unavailable(why)) => assert_eq!(why, refused),
        other => panic!("{other:?}"),
    }
    match bus.subscribe("thread.x").await {
        Err(BusError::Unavailable(why)) => assert!(why.ends_with(&refused), "{why}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("subscribed with Redis down"),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t0.elapsed()
    );
    server.start();
    let t0 = Instant::now();
    let mut sub = loop {
        if let Ok(sub) = bus.subscribe("thread.x").await {
            break sub;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "bus did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while bus.publish("thread.x", num(1)).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "publish did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(next(&mut sub).await, SubEvent::Message(num(1)));
}

/// Two nodes on one Redis: a publish is ONE Redis message per subscribed node (not per
/// subscriber), fanned out locally; channels and groups span nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_nodes() {
    let Some(server) = RedisServer::start_new() else {
        return;
    };
    let a: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&server.url(), test_config())
            .await
            .unwrap(),
    );
    let b: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&server.url(), test_config())
            .await
            .unwrap(),
    );
    let mut subs = Vec::new();
    for node in [&a, &b] {
        for _ in 0..50 {
            subs.push(node.subscribe("thread.two").await.unwrap());
        }
    }
    assert_eq!(
        a.publish("thread.two", num(7)).await.unwrap(),
        2,
        "one delivery per node"
    );
    for sub in &mut subs {
        assert_eq!(next(sub).await, SubEvent::Message(num(7)));
    }
    let reply = b.new_channel("reply");
    a.group_add("grp.two", &reply).await.unwrap();
    assert_eq!(a.group_send("grp.two", num(8)).await.unwrap(), 1);
    assert_eq!(as_num(&b.receive(&reply, LONG).await.unwrap()), 8);
}

async fn next(sub: &mut confab_bus::Subscription) -> SubEvent {
    tokio::time::timeout(LONG, sub.recv())
        .await
        .expect("subscriber timed out")
        .expect("subscription closed")
}

// ---------------------------------------------------------------------------------------------
// A throwaway redis-server.

pub struct RedisServer {
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a private server, or returns None when `CONFAB_SKIP_REDIS=1`. Panics (fails the
    /// test) when redis-server is missing: a silently skipped backend would look green.
    fn start_new() -> Option<RedisServer> {
        if std::env::var("CONFAB_SKIP_REDIS").is_ok_and(|v| v == "1") {
            eprintln!("CONFAB_SKIP_REDIS=1: skipping a Redis bus test");
            return None;
        }
        let bin = find_redis_server().unwrap_or_else(|| {
            panic!(
                "redis-server not found (REDIS_SERVER, PATH, /usr/bin, /usr/local/bin): the Redis \
                 bus tests need it (apt-get install redis-server), or set CONFAB_SKIP_REDIS=1 to skip them"
            )
        });
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("confab-bus-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            bin,
            port,
            dir,
            child: None,
        };
        server.start();
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let child = Command::new(&self.bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        let t0 = Instant::now();
        while !self.pings() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited ({status}):\n{log}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_redis_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

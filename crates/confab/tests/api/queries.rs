//! A page read costs a fixed number of SQL statements whatever the thread's size.

use crate::helpers::*;
use confab_core::cursor::Sort;
use confab_core::id::CommentId;
use confab_core::ident::Ident;
use confab_core::model::{Author, CommentStatus};
use confab_server::service::{Caller, CountRequest, PageRequest};
use confab_store::{count_queries, NewComment, Store};
use std::sync::Arc;

fn new_comment(
    forum: &confab_core::model::Forum,
    ident: &str,
    parent: Option<CommentId>,
) -> NewComment {
    NewComment {
        forum: std::sync::Arc::new(forum.clone()),
        ident: Ident::parse(ident).unwrap(),
        url: None,
        title: None,
        parent_id: parent,
        author: Author::Guest {
            name: "seed".into(),
            email: None,
            url: None,
        },
        anon_id: None,
        body_md: "seed".into(),
        body_html: "<p>seed</p>".into(),
        status: CommentStatus::Approved,
        held_reason: None,
        ip_hash: "0".into(),
        created_at: confab_core::now_ms(),
        idempotency: None,
        max_depth: 5,
        tasks: vec![],
        notify: None,
        spam_facts: None,
        images: Vec::new(),
    }
}

/// 10 top-level comments with two replies each and a reply under each reply (50 comments),
/// `extra` plain top-level comments, and 10 more with replies: every sort's first page has
/// the same shape whatever `extra` is.
async fn seed(
    store: &Arc<dyn Store>,
    forum: &confab_core::model::Forum,
    ident: &str,
    extra: usize,
) {
    seed_with_replies(store, forum, ident).await;
    seed_plain(store, forum, ident, extra).await;
    seed_with_replies(store, forum, ident).await;
}

async fn seed_with_replies(store: &Arc<dyn Store>, forum: &confab_core::model::Forum, ident: &str) {
    for _ in 0..10 {
        let top = store
            .post_comment(new_comment(forum, ident, None))
            .await
            .unwrap()
            .value
            .comment
            .id;
        for _ in 0..2 {
            let r = store
                .post_comment(new_comment(forum, ident, Some(top)))
                .await
                .unwrap()
                .value
                .comment
                .id;
            store
                .post_comment(new_comment(forum, ident, Some(r)))
                .await
                .unwrap();
        }
    }
}

async fn seed_plain(
    store: &Arc<dyn Store>,
    forum: &confab_core::model::Forum,
    ident: &str,
    extra: usize,
) {
    let mut left = extra;
    while left > 0 {
        let n = left.min(512);
        // Many in flight at once, so the writer commits them in groups.
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (store, c) = (store.clone(), new_comment(forum, ident, None));
            set.spawn(async move { store.post_comment(c).await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        left -= n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_read_costs_the_same_for_100_and_100000_comments() {
    let app = spawn().await;
    let forum = app.svc.forum("demo").unwrap();
    seed(&app.store, &forum, "small", 40).await;
    seed(&app.store, &forum, "big", 99_900).await;
    let caller = Caller {
        account: None,
        cookie_auth: false,
        anon: None,
        ip: "127.0.0.1".parse().unwrap(),
        foreign_origin: None,
        edit_token: None,
        https: false,
        hints: Default::default(),
    };
    let mut counts = Vec::new();
    for (ident, total) in [("small", 140), ("big", 100_000)] {
        for sort in [Sort::Oldest, Sort::Newest, Sort::Best] {
            let req = PageRequest {
                forum: forum.clone(),
                ident: Ident::parse(ident).unwrap(),
                sort,
                cursor: None,
                limit: 50,
            };
            let (page, n) = count_queries(app.svc.page(req.clone(), &caller)).await;
            let page = page.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
            assert_eq!(v["thread"]["comment_count"], total);
            assert_eq!(v["comments"].as_array().unwrap().len(), 50);
            counts.push((ident, sort, n));
            // Served from the cache the second time: no query at all.
            let (_, again) = count_queries(app.svc.page(req, &caller)).await;
            assert_eq!(again, 0, "{ident} {sort:?} second read is cached");
        }
    }
    eprintln!("statements per page read: {counts:?}");
    for sort in [Sort::Oldest, Sort::Newest, Sort::Best] {
        let small = counts
            .iter()
            .find(|c| c.0 == "small" && c.1 == sort)
            .unwrap()
            .2;
        let big = counts
            .iter()
            .find(|c| c.0 == "big" && c.1 == sort)
            .unwrap()
            .2;
        assert_eq!(
            small, big,
            "{sort:?}: same statements for 140 and 100,000 comments"
        );
        assert!(small <= 6, "{sort:?}: {small} statements");
    }
}

/// Counts come from the count cache until their thread changes, and move with every change.
#[tokio::test]
async fn counts_are_cached_until_their_thread_changes() {
    let app = spawn().await;
    let modr = As::bearer(&app.account("counter", false, &["demo"]).await);
    let first = app.comment("/c1", "one", None).await;
    app.comment("/c2", "two", None).await;
    let idents = vec!["/c1".to_string(), "/c2".to_string(), "/never".to_string()];
    let demo = app.svc.forum("demo").unwrap();
    let counts = || async {
        let req = CountRequest::parse(idents.clone(), 50).unwrap();
        let (r, n) = count_queries(app.svc.counts(&demo, req)).await;
        (r.unwrap().into_values().collect::<Vec<_>>(), n)
    };
    assert_eq!(
        counts().await,
        (vec![1, 1, 0], 1),
        "one statement for the three"
    );
    assert_eq!(counts().await, (vec![1, 1, 0], 0), "then none");
    // A reply, a deletion by a moderator, a restore: each shows at once, each costs one re-read.
    app.comment("/c1", "reply", first["id"].as_str()).await;
    assert_eq!(counts().await, (vec![2, 1, 0], 1));
    assert_eq!(counts().await, (vec![2, 1, 0], 0));
    let del = app
        .post(
            "/api/v1/forums/demo/moderate",
            serde_json::json!({"ids": [first["id"]], "action": "delete"}),
            &modr,
        )
        .await;
    assert_eq!(del.status, reqwest::StatusCode::OK, "{:?}", del.body);
    assert_eq!(counts().await.0, vec![1, 1, 0]);
    app.post(
        "/api/v1/forums/demo/moderate",
        serde_json::json!({"ids": [first["id"]], "action": "restore"}),
        &modr,
    )
    .await;
    assert_eq!(counts().await.0, vec![2, 1, 0]);
    // Over HTTP, as the count widget asks.
    let r = app
        .get(
            "/api/v1/counts?forum=demo&ident=/c1&ident=https://example.com/c2",
            &As::guest(),
        )
        .await;
    assert_eq!(
        r.body["counts"],
        serde_json::json!({"/c1": 2, "https://example.com/c2": 1})
    );
}

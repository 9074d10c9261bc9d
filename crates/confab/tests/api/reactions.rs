//! Emoji reactions (on comments and on a page itself) and featured comments: toggling once per
//! reader, the counts in the cached page (at no extra statement), the reader's own reactions,
//! live events, rate limits, and the moderators' "Featured" listing.

use crate::helpers::*;
use crate::live::{live_url, Sse};
use confab_core::cursor::Sort;
use confab_core::ident::Ident;
use confab_server::service::{Caller, PageRequest};
use confab_store::count_queries;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

fn react(on: bool, emoji: &str) -> Value {
    json!({"emoji": emoji, "on": on})
}

async fn react_comment(app: &TestApp, id: &str, body: Value, who: &As) -> Resp {
    app.post(&format!("/api/v1/comments/{id}/reactions"), body, who)
        .await
}

fn find<'a>(page: &'a Value, id: &str) -> &'a Value {
    fn walk<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
        list.as_array()?.iter().find_map(|c| {
            if c["id"] == id {
                Some(c)
            } else {
                walk(&c["replies"], id)
            }
        })
    }
    walk(&page["comments"], id).unwrap_or_else(|| panic!("{id} not on {page}"))
}

#[tokio::test]
async fn reactions_count_once_per_reader_and_emoji_and_show_on_the_page() {
    let app = spawn().await;
    let c = app.comment("/react", "react to me", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    let a = As::bearer(&app.account("reader_a", false, &[]).await);
    let b = As::bearer(&app.account("reader_b", false, &[]).await);

    // Set, set again (no double count), another reader, another reaction.
    let r = react_comment(&app, &id, react(true, "like"), &a).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["reactions"], json!({"like": 1}));
    assert_eq!(r.body["mine"], json!(["like"]));
    let r = react_comment(&app, &id, react(true, "like"), &a).await;
    assert_eq!(
        r.body["reactions"],
        json!({"like": 1}),
        "a repeat counts once"
    );
    let r = react_comment(&app, &id, react(true, "like"), &b).await;
    assert_eq!(r.body["reactions"], json!({"like": 2}));
    // By its emoji too, and `on` defaults to true.
    let r = react_comment(&app, &id, json!({"emoji": "❤️"}), &a).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["reactions"], json!({"like": 2, "love": 1}));
    assert_eq!(r.body["mine"], json!(["like", "love"]));
    // Cleared (twice: the second changes nothing); clearing one never set changes nothing.
    for _ in 0..2 {
        let r = react_comment(&app, &id, react(false, "like"), &a).await;
        assert_eq!(r.body["reactions"], json!({"like": 1, "love": 1}));
        assert_eq!(r.body["mine"], json!(["love"]));
    }
    let r = react_comment(&app, &id, react(false, "sad"), &b).await;
    assert_eq!(r.body["reactions"], json!({"like": 1, "love": 1}));
    assert_eq!(r.body["mine"], json!(["like"]));

    // Outside the set: refused, nothing counted.
    for bad in [
        json!({"emoji": "pizza"}),
        json!({"emoji": "🍕"}),
        json!({"emoji": ""}),
        json!({"emoji": "LIKE"}),
        json!({"emoji": 1}),
        json!({}),
    ] {
        let r = react_comment(&app, &id, bad.clone(), &a).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{:?}", r.body);
    }
    // No such comment.
    let r = react_comment(&app, "12345", react(true, "like"), &a).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    // The counts come with the page (only those above zero); nobody's own state is in it.
    let page = app.page("/react", "", &As::guest()).await.body;
    assert_eq!(find(&page, &id)["reactions"], json!({"like": 1, "love": 1}));
    assert_eq!(find(&page, &id)["featured"], false);

    // Each reader's own, beside their votes.
    let mine = app.get(&format!("/api/v1/votes?id={id}"), &a).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(mine.body["reactions"], json!({ id.as_str(): ["love"] }));
    let mine = app.get(&format!("/api/v1/votes?id={id}"), &b).await;
    assert_eq!(mine.body["reactions"], json!({ id.as_str(): ["like"] }));

    // A guest reacts as a voter does: one per address for the day, then per token.
    let r = react_comment(&app, &id, react(true, "party"), &As::guest()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let token = r.body["anon_token"].as_str().unwrap().to_string();
    let r = react_comment(&app, &id, react(true, "party"), &As::guest()).await;
    assert_eq!(r.body["reactions"]["party"], 1, "same address, same guest");
    let mine = app
        .get(&format!("/api/v1/votes?id={id}"), &As::anon(&token))
        .await;
    assert_eq!(mine.body["reactions"], json!({ id.as_str(): ["party"] }));

    // A removed comment takes no reactions.
    let moder = As::bearer(&app.account("react_mod", false, &["demo"]).await);
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [id], "action": "delete"}),
            &moder,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = react_comment(&app, &id, react(true, "wow"), &a).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
}

#[tokio::test]
async fn a_page_takes_reactions_of_its_own() {
    let app = spawn().await;
    let c = app.comment("/page-react", "first", None).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let page = app.page("/page-react", "", &As::guest()).await.body;
    let thread = page["thread"]["id"].as_str().unwrap().to_string();
    assert_eq!(page["thread"]["reactions"], json!({}));
    let a = As::bearer(&app.account("page_a", false, &[]).await);
    let b = As::bearer(&app.account("page_b", false, &[]).await);
    let path = format!("/api/v1/threads/{thread}/reactions");

    let r = app.post(&path, react(true, "wow"), &a).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["reactions"], json!({"wow": 1}));
    assert_eq!(r.body["mine"], json!(["wow"]));
    let r = app.post(&path, react(true, "wow"), &a).await;
    assert_eq!(r.body["reactions"], json!({"wow": 1}), "once per reader");
    let r = app.post(&path, react(true, "🎉"), &b).await;
    assert_eq!(r.body["reactions"], json!({"wow": 1, "party": 1}));
    let r = app.post(&path, react(true, "wow"), &b).await;
    assert_eq!(r.body["reactions"], json!({"wow": 2, "party": 1}));
    let r = app.post(&path, react(false, "wow"), &a).await;
    assert_eq!(r.body["reactions"], json!({"wow": 1, "party": 1}));
    assert_eq!(r.body["mine"], json!([]));
    let r = app.post(&path, react(true, "thumbs"), &a).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = app
        .post("/api/v1/threads/12345/reactions", react(true, "like"), &a)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    // Shown above the comments, on the thread; the comment's own are apart.
    let page = app.page("/page-react", "", &As::guest()).await.body;
    assert_eq!(page["thread"]["reactions"], json!({"wow": 1, "party": 1}));
    assert_eq!(find(&page, &cid)["reactions"], json!({}));
    // A reader's own page reactions come with their votes (the thread's id among the ids).
    let mine = app
        .get(&format!("/api/v1/votes?id={cid}&id={thread}"), &b)
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(
        mine.body["reactions"],
        json!({ thread.as_str(): ["wow", "party"] })
    );
}

#[tokio::test]
async fn reactions_are_live_and_make_cached_pages_stale() {
    let app = spawn().await;
    let c = app.comment("/react-live", "live", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    // Cached first.
    let before = app.page("/react-live", "", &As::guest()).await;
    let thread = before.body["thread"]["id"].as_str().unwrap().to_string();
    let mut sse = Sse::open(&app.http, &live_url(&app.base, "/react-live"), None)
        .await
        .unwrap();
    let wait = Duration::from_secs(10);
    let hello = sse.next(wait).await;
    let seq = hello.data["thread_seq"].as_i64().unwrap();
    let a = As::bearer(&app.account("live_a", false, &[]).await);
    react_comment(&app, &id, react(true, "laugh"), &a).await;
    let ev = sse.next(wait).await;
    assert_eq!(ev.name, "comment.reacted");
    assert_eq!(ev.data["id"], id.as_str());
    assert_eq!(ev.data["reactions"], json!({"laugh": 1}));
    assert_eq!(ev.data["thread_seq"], seq + 1);
    // A repeat changes nothing: no event, the next change is the next number.
    react_comment(&app, &id, react(true, "laugh"), &a).await;
    app.post(
        &format!("/api/v1/threads/{thread}/reactions"),
        react(true, "love"),
        &a,
    )
    .await;
    let ev = sse.next(wait).await;
    assert_eq!(ev.name, "thread.reacted");
    assert_eq!(ev.data["reactions"], json!({"love": 1}));
    assert_eq!(ev.data["thread_seq"], seq + 2);
    // The cached page was made stale (another reader, no pin, sees the counts).
    let http = reqwest::Client::new();
    let page: Value = http
        .get(format!(
            "{}/api/v1/comments?forum=demo&ident={}",
            app.base,
            urlencode("/react-live")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(find(&page, &id)["reactions"], json!({"laugh": 1}));
    assert_eq!(page["thread"]["reactions"], json!({"love": 1}));
    assert_ne!(page["thread"]["seq"], before.body["thread"]["seq"]);
}

#[tokio::test]
async fn reactions_share_the_vote_rate_limit() {
    let mut cfg = config();
    cfg.rate_limit.enabled = true;
    cfg.rate_limit.votes_per_hour_ip = 3;
    let app = spawn_with(cfg).await;
    let c = app.comment("/react-limit", "limited", None).await;
    let id = c["id"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for e in ["like", "love"] {
        statuses.push(
            react_comment(&app, &id, react(true, e), &As::guest())
                .await
                .status,
        );
    }
    // A vote uses up the same allowance.
    statuses.push(
        app.post(
            &format!("/api/v1/comments/{id}/vote"),
            json!({"value": 1}),
            &As::guest(),
        )
        .await
        .status,
    );
    statuses.push(
        react_comment(&app, &id, react(true, "sad"), &As::guest())
            .await
            .status,
    );
    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn moderators_feature_comments_and_the_featured_tab_lists_them() {
    let app = spawn().await;
    let top = app.comment("/featured", "top one", None).await;
    let top = top["id"].as_str().unwrap().to_string();
    let other = app.comment("/featured", "top two", None).await;
    let other = other["id"].as_str().unwrap().to_string();
    let reply = app.comment("/featured", "a reply", Some(&top)).await;
    let reply = reply["id"].as_str().unwrap().to_string();
    let moder = As::bearer(&app.account("feat_mod", false, &["demo"]).await);
    let reader = As::bearer(&app.account("feat_reader", false, &[]).await);
    let feature = |id: String, on: bool, who: As| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/comments/{id}/feature"),
                json!({ "featured": on }),
                &who,
            )
            .await
        }
    };

    // Only a moderator of the forum.
    assert_eq!(
        feature(top.clone(), true, reader.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        feature(top.clone(), true, As::guest()).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.forum("elsewhere", json!({})).await;
    let other_mod = As::bearer(&app.account("feat_other", false, &["elsewhere"]).await);
    assert_eq!(
        feature(top.clone(), true, other_mod).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .post(
            &format!("/api/v1/comments/{top}/feature"),
            json!({"featured": "yes"}),
            &moder,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(
        feature("12345".into(), true, moder.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    // Nothing featured yet: the listing is empty.
    let listed = app
        .page("/featured", "&sort=featured", &As::guest())
        .await
        .body;
    assert_eq!(listed["comments"], json!([]));

    // Featured: a top-level comment and a reply, listed flat, newest first.
    for id in [&top, &reply] {
        let r = feature(id.clone(), true, moder.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["featured"], true);
        assert_eq!(r.body["id"], id.as_str());
    }
    // Again: no change (and no second log entry).
    assert_eq!(
        feature(top.clone(), true, moder.clone()).await.body["featured"],
        true
    );
    let listed = app
        .page("/featured", "&sort=featured", &As::guest())
        .await
        .body;
    assert_eq!(ids(&listed["comments"]), vec![reply.clone(), top.clone()]);
    for c in listed["comments"].as_array().unwrap() {
        assert_eq!(c["featured"], true);
        assert_eq!(c["replies"], json!([]), "listed flat: {c}");
    }
    // The ordinary sorts mark them, and keep everything.
    let page = app
        .page("/featured", "&sort=oldest", &As::guest())
        .await
        .body;
    assert_eq!(find(&page, &top)["featured"], true);
    assert_eq!(find(&page, &reply)["featured"], true);
    assert_eq!(find(&page, &other)["featured"], false);
    // Paged like the others.
    let first = app
        .page("/featured", "&sort=featured&limit=1", &As::guest())
        .await
        .body;
    assert_eq!(ids(&first["comments"]), vec![reply.clone()]);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .page(
            "/featured",
            &format!("&sort=featured&limit=1&cursor={cursor}"),
            &As::guest(),
        )
        .await
        .body;
    assert_eq!(ids(&second["comments"]), vec![top.clone()]);
    // A cursor of another sort is refused.
    let r = app
        .get(
            &format!(
                "/api/v1/comments?forum=demo&ident={}&sort=newest&cursor={cursor}",
                urlencode("/featured")
            ),
            &As::guest(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Unfeatured: off the listing.
    let r = feature(reply.clone(), false, moder.clone()).await;
    assert_eq!(r.body["featured"], false);
    let listed = app
        .page("/featured", "&sort=featured", &As::guest())
        .await
        .body;
    assert_eq!(ids(&listed["comments"]), vec![top.clone()]);
    // A removed comment leaves the listing, and cannot be featured.
    app.post(
        "/api/v1/forums/demo/moderate",
        json!({"ids": [top], "action": "delete"}),
        &moder,
    )
    .await;
    let listed = app
        .page("/featured", "&sort=featured", &As::guest())
        .await
        .body;
    assert!(
        listed["comments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "deleted" || c["id"] != top.as_str()),
        "{listed}"
    );
    assert_eq!(
        feature(top.clone(), true, moder.clone()).await.status,
        StatusCode::NOT_FOUND
    );

    // Logged with the moderator's name.
    let log = app.get("/api/v1/forums/demo/log", &moder).await.body;
    let actions: Vec<(String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "feature" || e["action"] == "unfeature")
        .map(|e| {
            assert_eq!(e["actor_name"], "feat_mod", "{e}");
            (
                e["action"].as_str().unwrap().to_string(),
                e["comment_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut actions = actions;
    actions.sort();
    let mut want = vec![
        ("feature".to_string(), top.clone()),
        ("feature".to_string(), reply.clone()),
        ("unfeature".to_string(), reply.clone()),
    ];
    want.sort();
    assert_eq!(actions, want);
}

/// Thread reads cost the same statements with reactions and featured comments as without:
/// the counts and the flag come with the comment and thread rows the page reads anyway.
#[tokio::test]
async fn reactions_and_featured_comments_cost_no_statement_on_a_page_read() {
    let app = spawn().await;
    let moder = As::bearer(&app.account("count_mod", false, &["demo"]).await);
    let reader = As::bearer(&app.account("count_reader", false, &[]).await);
    // Two threads of the same shape; one gets reactions everywhere and featured comments.
    let mut rich_first = String::new();
    for ident in ["/plain", "/rich"] {
        for i in 0..6 {
            let top = app.comment(ident, &format!("top {i}"), None).await;
            let top = top["id"].as_str().unwrap().to_string();
            if ident == "/rich" && i == 0 {
                rich_first = top.clone();
            }
            let reply = app.comment(ident, "reply", Some(&top)).await;
            let reply = reply["id"].as_str().unwrap().to_string();
            if ident == "/rich" {
                for (id, e) in [(&top, "like"), (&top, "love"), (&reply, "party")] {
                    let r = react_comment(&app, id, react(true, e), &reader).await;
                    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
                }
                if i % 2 == 0 {
                    let r = app
                        .post(
                            &format!("/api/v1/comments/{reply}/feature"),
                            json!({"featured": true}),
                            &moder,
                        )
                        .await;
                    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
                }
            }
        }
    }
    let thread = app.page("/rich", "", &As::guest()).await.body["thread"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/api/v1/threads/{thread}/reactions"),
            react(true, "wow"),
            &reader,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let forum = app.svc.forum("demo").unwrap();
    let count_limit = |ident: &'static str, sort: Sort, limit: usize| {
        let (svc, forum) = (app.svc.clone(), forum.clone());
        async move {
            let req = PageRequest {
                forum,
                ident: Ident::parse(ident).unwrap(),
                sort,
                cursor: None,
                limit,
            };
            let (page, n) = count_queries(svc.page(req, &Caller::public())).await;
            let page: Value = serde_json::from_slice(&page.unwrap().body).unwrap();
            (page, n)
        }
    };
    let count = |ident: &'static str, sort: Sort| {
        let (svc, forum) = (app.svc.clone(), forum.clone());
        async move {
            let req = PageRequest {
                forum,
                ident: Ident::parse(ident).unwrap(),
                sort,
                cursor: None,
                // Not the default size: a write refills the default first page in the
                // background, and this read must render from storage to be counted.
                limit: 40,
            };
            // Rendered from storage (as a cache fill does), so every statement is counted.
            let (page, n) = count_queries(svc.page(req, &Caller::public())).await;
            let page: Value = serde_json::from_slice(&page.unwrap().body).unwrap();
            (page, n)
        }
    };
    for sort in [Sort::Best, Sort::Newest, Sort::Oldest] {
        let (plain, n_plain) = count("/plain", sort).await;
        let (rich, n_rich) = count("/rich", sort).await;
        eprintln!("{sort:?}: plain {n_plain} statements, rich {n_rich}");
        assert!(n_plain > 0, "{sort:?}: the read went to storage");
        assert_eq!(
            n_plain, n_rich,
            "{sort:?}: reactions and featured cost nothing"
        );
        assert_eq!(rich["thread"]["reactions"], json!({"wow": 1}));
        let c = &rich["comments"][0];
        assert_eq!(c["reactions"], json!({"like": 1, "love": 1}), "{c}");
        assert_eq!(c["replies"][0]["reactions"], json!({"party": 1}));
        assert_eq!(plain["comments"][0]["reactions"], json!({}));
        // The second read is served from the page cache: no statement.
        let (_, again) = count("/rich", sort).await;
        assert_eq!(again, 0, "{sort:?}: cached");
    }
    // A pinned comment that is not on the first page comes with the page's own statement.
    let r = app
        .req(
            reqwest::Method::PATCH,
            &format!("/api/v1/threads/{thread}"),
            Some(json!({ "pinned": rich_first })),
            &moder,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for sort in [Sort::Best, Sort::Newest, Sort::Oldest] {
        // Two a page: under Newest the pinned (oldest) comment is not among them.
        let (_, n_plain) = count_limit("/plain", sort, 2).await;
        let (rich, n_rich) = count_limit("/rich", sort, 2).await;
        assert!(n_plain > 0, "{sort:?}: the read went to storage");
        assert_eq!(n_plain, n_rich, "{sort:?}: a pin costs no statement");
        assert_eq!(
            rich["comments"][0]["id"],
            rich_first.as_str(),
            "{sort:?}: pinned first"
        );
        let shown = if sort == Sort::Newest { 3 } else { 2 };
        assert_eq!(
            rich["comments"].as_array().unwrap().len(),
            shown,
            "{sort:?}: {rich}"
        );
    }
    // The featured listing: the thread, the featured comments (one indexed range) and their
    // authors, however many comments the thread has.
    let (listed, n_featured) = count("/rich", Sort::Featured).await;
    assert_eq!(listed["comments"].as_array().unwrap().len(), 3, "{listed}");
    assert!(n_featured > 0 && n_featured <= 3, "{n_featured} statements");
}

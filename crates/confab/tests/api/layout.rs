//! Issue 15, "a layout that fits the page": what the server does for it. A deleted comment
//! sorts by its own time under "Best" (not by the votes its text once had), and a page on an
//! origin no forum lists gets a refusal it can read instead of a bare CORS failure.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn top_ids(page: &Resp) -> Vec<String> {
    page.body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_deleted_comment_sorts_by_its_time_not_its_old_votes() {
    let app = spawn().await;
    let a = app.comment("del-best", "first, liked twice", None).await;
    let b = app.comment("del-best", "second, liked once", None).await;
    let c = app.comment("del-best", "third, no votes", None).await;
    let (a_id, b_id, c_id) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
    );
    let like = |id: &str| format!("/api/v1/comments/{id}/vote");
    for _ in 0..2 {
        let (_, voter) = app.svc.new_anon_token();
        let r = app
            .post(&like(a_id), json!({"value": 1}), &As::anon(&voter))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let (_, voter) = app.svc.new_anon_token();
    let r = app
        .post(&like(b_id), json!({"value": 1}), &As::anon(&voter))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let best = app.page("del-best", "&sort=best", &As::guest()).await;
    assert_eq!(top_ids(&best), [a_id, b_id, c_id]);

    // A reply keeps A on the page as a placeholder once its author deletes it.
    app.comment("del-best", "a reply", Some(a_id)).await;
    let del = app
        .req(
            Method::DELETE,
            &format!("/api/v1/comments/{a_id}"),
            None,
            &As::edit(a["edit_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(del.status, StatusCode::OK, "{:?}", del.body);

    // Best: B (one like) first; the placeholder ranks as unvoted, among C by its own time.
    let best = app.page("del-best", "&sort=best", &As::guest()).await;
    assert_eq!(top_ids(&best), [b_id, a_id, c_id], "{:?}", best.body);
    assert_eq!(best.body["comments"][1]["status"], "deleted");
    // The cursor of Best pages goes through the placeholder the same way.
    let first = app
        .page("del-best", "&sort=best&limit=1", &As::guest())
        .await;
    assert_eq!(top_ids(&first), [b_id]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = app
        .page(
            "del-best",
            &format!("&sort=best&limit=5&cursor={}", urlencode(cursor)),
            &As::guest(),
        )
        .await;
    assert_eq!(top_ids(&rest), [a_id, c_id]);
    // Oldest and Newest are by time as ever.
    let oldest = app.page("del-best", "&sort=oldest", &As::guest()).await;
    assert_eq!(top_ids(&oldest), [a_id, b_id, c_id]);
    let newest = app.page("del-best", "&sort=newest", &As::guest()).await;
    assert_eq!(top_ids(&newest), [c_id, b_id, a_id]);

    // A moderator's delete ranks the same way: B's like no longer lifts it above C.
    app.comment("del-best", "a reply to B", Some(b_id)).await;
    let modr = app.account("layout-mod", false, &["demo"]).await;
    let m = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [b_id], "action": "delete"}),
            &As::bearer(&modr),
        )
        .await;
    assert!(m.status.is_success(), "{:?}", m.body);
    let best = app.page("del-best", "&sort=best", &As::guest()).await;
    assert_eq!(top_ids(&best), [a_id, b_id, c_id], "{:?}", best.body);
}

#[tokio::test]
async fn a_page_on_an_unlisted_origin_reads_why_it_is_refused() {
    let app = spawn().await;
    app.forum("blog", json!({})).await; // allows https://site.example
    let stranger = As::guest().origin("https://stranger.example");

    // The widget's first read, a plain GET: refused before any handler, readable by the page.
    let r = app
        .get("/api/v1/comments?forum=blog&ident=%2Fpost", &stranger)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://stranger.example")
    );
    assert!(r.header("vary").unwrap_or("").contains("origin"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // It names the origin and the fix; it lists no other site and no data.
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("https://stranger.example"), "{msg}");
    assert!(
        msg.contains("confab admin forum blog --add-origin https://stranger.example"),
        "{msg}"
    );
    assert!(!msg.contains("site.example"), "{msg}");
    assert!(r.body.get("comments").is_none());
    // A forum name that is not plain is not echoed.
    let r = app
        .get("/api/v1/comments?forum=%3Cb%3E&ident=x", &stranger)
        .await;
    assert_eq!(r.code(), "origin_not_allowed");
    assert!(!r.body["error"]["message"].as_str().unwrap().contains('<'));

    // Writes are refused the same way, and nothing is written.
    let w = app
        .post_comment("blog", "/post", "hello", None, &stranger)
        .await;
    assert_eq!(
        (w.status, w.code()),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
    let p = app
        .get(
            "/api/v1/comments?forum=blog&ident=%2Fpost",
            &As::guest().origin("https://site.example"),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.body["comments"], json!([]));

    // Preflights stay refused: a request a browser would preflight is never sent from there.
    let pre = app
        .http
        .request(Method::OPTIONS, format!("{}/api/v1/comments", app.base))
        .header("origin", "https://stranger.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(pre.headers().get("access-control-allow-origin").is_none());

    // A listed origin, the server's own pages (no Origin), and a forum's own routes answer as
    // before; an origin that is not a web page's ("null") is not echoed.
    let own = app
        .get("/api/v1/comments?forum=blog&ident=x", &As::guest())
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let null = app
        .get(
            "/api/v1/comments?forum=blog&ident=x",
            &As::guest().origin("null"),
        )
        .await;
    assert!(null.header("access-control-allow-origin").is_none());
    let modr = app.account("blogmod", false, &["blog"]).await;
    let f = app
        .get(
            "/api/v1/forums/blog/log",
            &As {
                bearer: Some(modr),
                origin: Some("https://stranger.example".into()),
                ..As::default()
            },
        )
        .await;
    assert_eq!(f.code(), "origin_not_allowed");
    assert!(f.header("access-control-allow-origin").is_none());
}

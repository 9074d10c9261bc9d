use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;

async fn walk(app: &TestApp, ident: &str, sort: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let q = format!(
            "&sort={sort}&limit={limit}{}",
            if cursor.is_empty() {
                String::new()
            } else {
                format!("&cursor={cursor}")
            }
        );
        let p = app.page(ident, &q, &As::guest()).await;
        let page: Vec<String> = p.body["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert!(page.len() <= limit);
        out.extend(page);
        match p.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return out,
        }
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn cursors_visit_every_top_level_comment_once_in_every_sort() {
    let app = spawn().await;
    let mut all = Vec::new();
    for i in 0..120 {
        all.push(
            app.comment("page", &format!("c{i}"), None).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Give some comments votes so "best" has ties and non-ties to page across.
    for (i, id) in all.iter().enumerate().filter(|(i, _)| i % 7 == 0) {
        let v = if i % 2 == 0 { 1 } else { -1 };
        app.post(
            &format!("/api/v1/comments/{id}/vote"),
            json!({"value": v}),
            &As::guest(),
        )
        .await;
    }
    let oldest = walk(&app, "page", "oldest", 50).await;
    assert_eq!(oldest, all);
    let newest = walk(&app, "page", "newest", 50).await;
    assert_eq!(newest, all.iter().rev().cloned().collect::<Vec<_>>());
    let best = walk(&app, "page", "best", 17).await;
    assert_eq!(best.len(), 120);
    assert_eq!(
        best.iter().collect::<HashSet<_>>().len(),
        120,
        "no duplicates across pages"
    );
    let default = app.page("page", "", &As::guest()).await;
    assert_eq!(
        default.body["comments"].as_array().unwrap().len(),
        50,
        "default page size"
    );
}

#[tokio::test]
async fn bad_cursors_and_limits_are_400() {
    let app = spawn().await;
    for i in 0..3 {
        app.comment("bc", &format!("{i}"), None).await;
    }
    let p = app.page("bc", "&sort=newest&limit=1", &As::guest()).await;
    let cursor = p.body["next_cursor"].as_str().unwrap();
    for q in [
        format!("&sort=oldest&cursor={cursor}"),
        "&cursor=not-a-cursor".to_string(),
        "&cursor=%00%01".to_string(),
    ] {
        let r = app
            .get(
                &format!("/api/v1/comments?forum=demo&ident=bc{q}"),
                &As::guest(),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "bad_cursor"),
            "{q}"
        );
    }
    for q in [
        "&limit=0",
        "&limit=101",
        "&limit=-1",
        "&limit=x",
        "&sort=worst",
    ] {
        let r = app
            .get(
                &format!("/api/v1/comments?forum=demo&ident=bc{q}"),
                &As::guest(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.code() == "invalid_input", "{q}: {:?}", r.body);
    }
}

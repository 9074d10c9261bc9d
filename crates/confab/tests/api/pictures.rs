//! Pictures attached to comments: upload (re-encoded, metadata dropped), the refusals (a
//! decompression bomb, an oversized file, a file that is not a picture, a forum without
//! pictures), the served picture's headers, attaching, a moderator's removal, a removed
//! comment's pictures, pruning, and what a page costs with pictures.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Cursor;

/// A PNG of `w`x`h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// The GPS coordinates' tag as they appear in the EXIF block below.
const GPS_MARK: &[u8] = b"GPS-52.5200N-13.4050E";

/// A JPEG with an EXIF block (APP1) that carries a GPS IFD pointer and a GPS marker string.
fn jpeg_with_gps() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 40]));
    let mut jpg = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut jpg), image::ImageFormat::Jpeg)
        .unwrap();
    // TIFF header (big-endian), IFD0 with one entry: GPSInfo (0x8825) -> offset 26, then the
    // GPS IFD (no entries) and the marker as trailing data.
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1, 0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    tiff.extend_from_slice(GPS_MARK);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpg[2..]);
    out
}

/// A PNG that declares `w`x`h` pixels and carries none: a decompression bomb's header.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = 0xFFFF_FFFFu32;
        for b in kind.iter().chain(data) {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    0xEDB8_8320 ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        out.extend_from_slice(&(!crc).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // A little compressed data (zeros) so decoders start: the pixels would need 7.5 GB.
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Uploads `data` as `ctype` to `forum`.
async fn upload(app: &TestApp, forum: &str, data: Vec<u8>, ctype: &str, who: &As) -> Resp {
    let mut r = app
        .http
        .post(format!("{}/api/v1/forums/{forum}/images", app.base))
        .header("content-type", ctype)
        .body(data);
    if let Some(t) = &who.bearer {
        r = r.bearer_auth(t);
    }
    if let Some(t) = &who.anon {
        r = r.header("x-confab-anon", t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

/// The served picture: status, headers, bytes.
async fn fetch(app: &TestApp, url: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = app
        .http
        .get(format!("{}{url}", app.base))
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    (s, h, r.bytes().await.unwrap().to_vec())
}

/// Turns pictures on for `demo`; the moderator's token.
async fn pictures_on(app: &TestApp) -> String {
    let modr = app.account("picmod", false, &["demo"]).await;
    let r = app
        .req(
            Method::PATCH,
            "/api/v1/forums/demo",
            Some(json!({"images": true})),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["settings"]["images"], true);
    modr
}

/// A reader with an account (its token).
async fn reader(app: &TestApp, name: &str) -> As {
    As::bearer(&app.account(name, false, &[]).await)
}

async fn post_with(app: &TestApp, ident: &str, images: Value, who: &As) -> Resp {
    app.post(
        "/api/v1/comments",
        json!({"forum": "demo", "ident": ident, "body": "look at this", "images": images}),
        who,
    )
    .await
}

#[tokio::test]
async fn a_png_and_a_jpeg_are_re_encoded_served_for_a_year_and_lose_their_gps() {
    let app = spawn().await;
    pictures_on(&app).await;
    let ann = reader(&app, "ann").await;

    let p = upload(&app, "demo", png(120, 80), "image/png", &ann).await;
    assert_eq!(p.status, StatusCode::CREATED, "{:?}", p.body);
    assert_eq!(
        (p.body["width"].as_u64(), p.body["height"].as_u64()),
        (Some(120), Some(80))
    );
    let png_url = p.body["url"].as_str().unwrap().to_string();
    assert!(
        png_url.starts_with("/api/v1/images/") && png_url.ends_with(".png"),
        "{png_url}"
    );

    let original = jpeg_with_gps();
    assert!(contains(&original, b"Exif") && contains(&original, GPS_MARK));
    let j = upload(&app, "demo", original, "image/jpeg", &ann).await;
    assert_eq!(j.status, StatusCode::CREATED, "{:?}", j.body);
    let jpg_url = j.body["url"].as_str().unwrap().to_string();
    assert!(jpg_url.ends_with(".jpg"), "{jpg_url}");

    // Not served before a comment takes it.
    assert_eq!(fetch(&app, &jpg_url).await.0, StatusCode::NOT_FOUND);

    let c = post_with(&app, "/pics", json!([p.body["id"], j.body["id"]]), &ann).await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    assert_eq!(c.body["images"][0]["url"], png_url);
    assert_eq!(c.body["images"][1]["url"], jpg_url);

    // On the page, in order, with their sizes.
    let page = app.page("/pics", "", &As::guest()).await;
    assert_eq!(page.body["pictures"], true);
    let imgs = &page.body["comments"][0]["images"];
    assert_eq!(imgs[0]["url"], png_url);
    assert_eq!(imgs[1]["width"], 64);
    assert_eq!(imgs[1]["height"], 48);

    let (s, h, bytes) = fetch(&app, &jpg_url).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    // Re-encoded: a JPEG with no EXIF block and no GPS data.
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    assert!(!contains(&bytes, b"Exif"), "EXIF survived");
    assert!(!contains(&bytes, GPS_MARK), "GPS survived");

    let (s, h, bytes) = fetch(&app, &png_url).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    // The address is the content's: another hash is not found.
    let wrong = format!(
        "{}0123456789abcdef0123456789abcdef.png",
        &png_url[..png_url.rfind('/').unwrap() + 1]
    );
    assert_eq!(fetch(&app, &wrong).await.0, StatusCode::NOT_FOUND);
    // A picture is attached once.
    let again = post_with(&app, "/pics", json!([p.body["id"]]), &ann).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
}

#[tokio::test]
async fn a_bomb_an_oversized_and_a_mislabelled_file_are_refused() {
    let mut c = config();
    c.images.max_bytes = 20_000;
    let app = spawn_with(c).await;
    pictures_on(&app).await;
    let ann = reader(&app, "bob").await;

    // 50000x50000 declared in a file of a few dozen bytes: refused from its header.
    let bomb = bomb_png(50_000, 50_000);
    assert!(bomb.len() < 100);
    let r = upload(&app, "demo", bomb, "image/png", &ann).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("50000x50000"),
        "{:?}",
        r.body
    );

    // Over max_bytes: 413 (declared length), whatever it is.
    let big = vec![0u8; 30_000];
    let r = upload(&app, "demo", big, "image/png", &ann).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert_eq!(r.code(), "payload_too_large");

    // Text named a PNG, and text sent as text.
    let text = b"just some text pretending to be a picture".to_vec();
    let r = upload(&app, "demo", text.clone(), "image/png", &ann).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{:?}", r.body);
    let r = upload(&app, "demo", text, "text/plain", &ann).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{:?}", r.body);
    // A picture format Confab does not take (an SVG: script inside a picture).
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec();
    let r = upload(&app, "demo", svg, "image/png", &ann).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{:?}", r.body);
    // A real PNG declared as a JPEG: the content decides, it is stored as the PNG it is.
    let r = upload(&app, "demo", png(10, 10), "image/jpeg", &ann).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["url"].as_str().unwrap().ends_with(".png"));

    // The server still answers (no decoder ran away with its memory).
    assert_eq!(
        app.get("/healthz", &As::guest()).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_forum_without_pictures_refuses_them() {
    let app = spawn().await;
    let ann = reader(&app, "cat").await;
    let page = app.page("/nopics", "", &As::guest()).await;
    assert!(page.body.get("pictures").is_none(), "{}", page.body);
    let r = upload(&app, "demo", png(8, 8), "image/png", &ann).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // A comment naming a picture on such a forum is refused too.
    let r = post_with(&app, "/nopics", json!(["12345"]), &ann).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // An unknown forum.
    let r = upload(&app, "nosuchforum", png(8, 8), "image/png", &ann).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
}

#[tokio::test]
async fn only_the_uploader_attaches_a_picture_and_a_guest_keeps_theirs_by_token() {
    let app = spawn().await;
    pictures_on(&app).await;
    let ann = reader(&app, "dan").await;
    let eve = reader(&app, "eve").await;
    let p = upload(&app, "demo", png(8, 8), "image/png", &ann).await;
    assert_eq!(p.status, StatusCode::CREATED);
    let r = post_with(&app, "/mine", json!([p.body["id"]]), &eve).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);

    // A guest without a token gets one with the upload, and posts with it.
    let g = upload(&app, "demo", png(9, 9), "image/png", &As::guest()).await;
    assert_eq!(g.status, StatusCode::CREATED, "{:?}", g.body);
    let tok = g.body["anon_token"].as_str().unwrap().to_string();
    let r = post_with(&app, "/mine", json!([g.body["id"]]), &As::guest()).await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "a guest without the token: {:?}",
        r.body
    );
    let r = post_with(&app, "/mine", json!([g.body["id"]]), &As::anon(&tok)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["images"][0]["id"], g.body["id"]);

    // Too many pictures for one comment.
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            upload(&app, "demo", png(4, 4), "image/png", &ann)
                .await
                .body["id"]
                .clone(),
        );
    }
    let r = post_with(&app, "/mine", json!(ids), &ann).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
}

#[tokio::test]
async fn a_moderator_removes_a_picture_and_a_removed_comment_takes_its_pictures_along() {
    let app = spawn().await;
    let modr = pictures_on(&app).await;
    let ann = reader(&app, "fay").await;
    let a = upload(&app, "demo", png(30, 20), "image/png", &ann).await;
    let b = upload(&app, "demo", png(20, 30), "image/png", &ann).await;
    let c = post_with(&app, "/rm", json!([a.body["id"], b.body["id"]]), &ann).await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let cid = c.body["id"].as_str().unwrap().to_string();
    let (a_url, b_url) = (
        a.body["url"].as_str().unwrap().to_string(),
        b.body["url"].as_str().unwrap().to_string(),
    );
    // Cached page first, so the removal must make it stale.
    let before = app.page("/rm", "", &As::guest()).await;
    assert_eq!(
        before.body["comments"][0]["images"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let queue = app
        .get("/api/v1/forums/demo/comments?queue=all", &As::bearer(&modr))
        .await;
    assert_eq!(
        queue.body["comments"][0]["images"][1]["url"], b_url,
        "{}",
        queue.body
    );

    // A reader cannot remove it.
    let path = format!(
        "/api/v1/forums/demo/comments/{cid}/images/{}",
        a.body["id"].as_str().unwrap()
    );
    let r = app.req(Method::DELETE, &path, None, &ann).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .req(Method::DELETE, &path, None, &As::bearer(&modr))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = app
        .req(Method::DELETE, &path, None, &As::bearer(&modr))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(fetch(&app, &a_url).await.0, StatusCode::NOT_FOUND);
    let after = app.page("/rm", "", &As::guest()).await;
    let imgs = after.body["comments"][0]["images"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(imgs.len(), 1, "{}", after.body);
    assert_eq!(imgs[0]["url"], b_url);
    assert_ne!(after.header("etag"), before.header("etag"));
    let log = app.get("/api/v1/forums/demo/log", &As::bearer(&modr)).await;
    assert!(
        log.body.to_string().contains("remove-image"),
        "{}",
        log.body
    );

    // Deleting the comment: its other picture is gone (410), and the page shows none.
    assert_eq!(fetch(&app, &b_url).await.0, StatusCode::OK);
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [cid], "action": "spam"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.body["changed"], 1, "{:?}", r.body);
    let (s, _, body) = fetch(&app, &b_url).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(String::from_utf8_lossy(&body).contains("\"gone\""));
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [cid], "action": "approve"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.body["changed"], 1);
    assert_eq!(fetch(&app, &b_url).await.0, StatusCode::OK);
    let r = app
        .post(
            "/api/v1/forums/demo/moderate",
            json!({"ids": [cid], "action": "delete"}),
            &As::bearer(&modr),
        )
        .await;
    assert_eq!(r.body["changed"], 1);
    assert_eq!(fetch(&app, &b_url).await.0, StatusCode::GONE);
}

#[tokio::test]
async fn uploads_never_attached_are_pruned() {
    let mut c = config();
    c.images.unattached_hours = 0;
    let app = spawn_with(c).await;
    pictures_on(&app).await;
    let ann = reader(&app, "gus").await;
    let p = upload(&app, "demo", png(8, 8), "image/png", &ann).await;
    assert_eq!(p.status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.svc.prune_idempotency().await.unwrap();
    let r = post_with(&app, "/pruned", json!([p.body["id"]]), &ann).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
}

#[tokio::test]
async fn a_page_with_pictures_costs_the_statements_of_one_without() {
    let app = spawn().await;
    pictures_on(&app).await;
    // Guests both (an account author would be read once, then cached).
    let first = upload(&app, "demo", png(8, 8), "image/png", &As::guest()).await;
    let guest = As::anon(first.body["anon_token"].as_str().unwrap());
    let mut ids = vec![first.body["id"].clone()];
    for _ in 0..2 {
        ids.push(
            upload(&app, "demo", png(8, 8), "image/png", &guest)
                .await
                .body["id"]
                .clone(),
        );
    }
    for (i, id) in ids.into_iter().enumerate() {
        let r = app
            .post(
                "/api/v1/comments",
                json!({"forum": "demo", "ident": "/plain", "body": format!("plain {i}")}),
                &guest,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = post_with(&app, "/withpics", json!([id]), &guest).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let forum = app.svc.forum("demo").unwrap();
    let caller = confab_server::service::Caller {
        account: None,
        cookie_auth: false,
        anon: None,
        ip: "127.0.0.1".parse().unwrap(),
        foreign_origin: None,
        edit_token: None,
        https: false,
        hints: Default::default(),
    };
    let mut costs = Vec::new();
    for ident in ["/plain", "/withpics"] {
        // A sort and size no refill after a post has cached.
        let req = confab_server::service::PageRequest {
            forum: forum.clone(),
            ident: confab_core::ident::Ident::parse(ident).unwrap(),
            sort: confab_core::cursor::Sort::Oldest,
            cursor: None,
            limit: 7,
        };
        let (page, n) = confab_store::count_queries(app.svc.page(req, &caller)).await;
        let body = String::from_utf8(page.unwrap().body.to_vec()).unwrap();
        assert_eq!(
            body.contains("/api/v1/images/"),
            ident == "/withpics",
            "{body}"
        );
        costs.push(n);
    }
    assert!(costs[0] > 0, "the page was read from storage");
    assert_eq!(costs[0], costs[1], "statements without and with pictures");
}

#[tokio::test]
async fn a_readers_data_lists_their_pictures_and_erasing_deletes_them() {
    let app = spawn().await;
    pictures_on(&app).await;
    let ivy = reader(&app, "ivy").await;
    let p = upload(&app, "demo", png(12, 10), "image/png", &ivy).await;
    let c = post_with(&app, "/mydata", json!([p.body["id"]]), &ivy).await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let url = p.body["url"].as_str().unwrap().to_string();
    assert_eq!(fetch(&app, &url).await.0, StatusCode::OK);

    let d = app.get("/api/v1/me/data", &ivy).await;
    assert_eq!(d.status, StatusCode::OK, "{:?}", d.body);
    assert_eq!(d.body["comments"][0]["images"][0]["url"], url, "{}", d.body);

    let r = app
        .post("/api/v1/me/delete", json!({"comments": "keep"}), &ivy)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Kept as "deleted user", but its pictures are the reader's own: gone.
    let s = fetch(&app, &url).await.0;
    assert!(s == StatusCode::NOT_FOUND || s == StatusCode::GONE, "{s}");
    let page = app.page("/mydata", "", &As::guest()).await;
    assert!(
        page.body["comments"][0].get("images").is_none(),
        "{}",
        page.body
    );
}

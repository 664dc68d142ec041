//! Files handed out as downloads without holding them in memory: the body
//! reads the file in chunks as the client takes them.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// How much of the file one chunk of the body carries.
const CHUNK: usize = 256 * 1024;

/// A tar archive as an attachment named `file_name`, streamed from `file`
/// (`len` bytes). Reads are positional, so several downloads of one file
/// may run at once.
pub fn tar_attachment(file: Arc<std::fs::File>, len: u64, file_name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        file_body(file, len),
    )
        .into_response()
}

/// The first `len` bytes of `file` as a streamed body.
pub fn file_body(file: Arc<std::fs::File>, len: u64) -> Body {
    let chunks = futures_util::stream::unfold(0u64, move |offset| {
        let file = file.clone();
        async move {
            if offset >= len {
                return None;
            }
            let want = usize::try_from(len - offset).map_or(CHUNK, |rest| rest.min(CHUNK));
            let read = tokio::task::spawn_blocking(move || {
                let mut chunk = vec![0u8; want];
                file.read_exact_at(&mut chunk, offset).map(|()| chunk)
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|read| read);
            match read {
                Ok(chunk) => Some((Ok(Bytes::from(chunk)), offset + want as u64)),
                // The body ends with the error; nothing more is read.
                Err(e) => Some((Err(e), len)),
            }
        }
    });
    Body::from_stream(chunks)
}

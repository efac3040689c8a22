//! Reading the answer of a credentials service: bounded, and zeroed on drop (it holds secrets).

use zeroize::Zeroizing;

/// Why a body was not read.
pub(super) enum BodyError {
    /// More than the cap.
    TooLarge,
    /// The connection failed or timed out.
    Transport(reqwest::Error),
}

/// Reads a body of at most `cap` bytes (refused early on a larger `Content-Length`) into a
/// buffer zeroed on drop: it is sized from what arrived, never from the length the peer
/// declares, and replaced (the old one zeroed) rather than grown in place, so that no copy of a
/// secret is left behind in freed memory.
pub(super) async fn read_secret_body(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        let len = body.len().saturating_add(chunk.len());
        if len > cap {
            return Err(BodyError::TooLarge);
        }
        if body.capacity() < len {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                len.max(body.capacity().saturating_mul(2)).min(cap),
            ));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
